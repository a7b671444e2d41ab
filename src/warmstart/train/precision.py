"""Where a model computes, and in which precision: shared by training and inference.

``precision`` is one of :data:`warmstart.config.PRECISIONS`: ``bf16``, ``fp32``, or ``auto``
(bf16 where the hardware runs it natively, fp32 elsewhere).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from warmstart.config import PRECISIONS
from warmstart.errors import WarmstartError


def resolve_device(name: str, dist_local_rank: int = 0) -> torch.device:
    """The torch device of ``--device name`` (cpu, cuda, cuda:N or auto: the GPU where there
    is one); ``cuda`` is the GPU of this process's ``dist_local_rank`` under torchrun."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{dist_local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise WarmstartError(f"--device {name}: no CUDA device is available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise WarmstartError(f"--device {name!r}: not a device; use cpu, cuda, cuda:N or auto") from None


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively (GPU, or a CPU with AMX or AVX-512 BF16).

    Elsewhere bf16 is emulated and far slower than fp32, so ``auto`` picks fp32 there.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})


@functools.cache
def _cpuinfo() -> str:
    """/proc/cpuinfo's text ("" where there is none: not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags (its first ``flags`` line; none where not Linux)."""
    lines = _cpuinfo().splitlines()
    return frozenset(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))


def cpu_facts() -> dict[str, Any]:
    """The CPU model, the cores this process may use, and the instruction sets that change
    speed (``isa``: those of avx2, avx512f, avx512_bf16, amx_bf16 it has); what a benchmark
    result records (``benchmarks/provenance.py``) and the demo's report says."""
    import os
    import platform

    lines = _cpuinfo().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                 "") or platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cores": cores,
            "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in _cpu_flags()]}


def describe_cpu() -> str:
    """The CPU as a figure's reader needs it: model, cores this process may use, and whether
    bf16 runs natively, e.g. ``Intel(R) Xeon(R) Processor, 2 cores, bf16 native (AMX)``."""
    facts = cpu_facts()
    native = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"))
              if flag in facts["isa"]]
    bf16 = f"bf16 native ({', '.join(native)})" if native else "no native bf16"
    return f"{facts['cpu']}, {facts['cores']} cores, {bf16}"


def check_precision(precision: str, name: str) -> None:
    """An error naming ``name`` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise WarmstartError(f"{name} {precision!r}: use bf16, fp32 or auto")


def uses_bf16(device: torch.device, precision: str) -> bool:
    """Whether ``precision`` (bf16, fp32, auto) computes in bf16 on ``device``."""
    return precision == "bf16" or (precision == "auto" and fast_bf16(device))


def bf16_autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast on ``device`` where ``precision`` (bf16, fp32, auto) asks for it."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, precision))
