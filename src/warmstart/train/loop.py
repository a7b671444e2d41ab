"""The one training loop: every torch method is a module, a batch source and a loss.

It owns what they share: AdamW with warmup and decay, gradient accumulation, clipping, bf16
autocast, optional ``torch.compile``, budgets (steps, tokens, wall time), the progress bar,
the metrics log, validation, atomic checkpoints with exact resume, SIGINT/SIGTERM, and DDP
under torchrun.

Determinism: the global batch of step ``s`` and its random masks are functions of (seed, s),
and dropout is reseeded from (seed, s, rank) each step, so a resumed run repeats exactly what
an uninterrupted one does, and a run split over processes sees the same batches as one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from warmstart.config import opt, option_name
from warmstart.errors import RunInterrupted, WarmstartError
from warmstart.seeds import mix_seed
from warmstart.stopping import StopOnSignal
from warmstart.train.batches import BatchSource, Prepared
from warmstart.train.budget import Budget
from warmstart.train.checkpoint import Progress, load_checkpoint, save_checkpoint
from warmstart.train.distributed import Distributed
from warmstart.train.optim import param_groups
from warmstart.train.precision import bf16_autocast, check_precision, resolve_device


@dataclass
class TrainConfig:
    """Settings of the training loop, shared by every objective."""

    batch_size: int = opt(32, "sequences per optimizer step, over all processes")
    micro_batch_size: int = opt(0, "sequences per forward pass (0: a process's whole share)", at_least=0)
    lr: float = opt(5e-4, "peak learning rate", above=0)
    weight_decay: float = opt(0.01, "AdamW weight decay (not on biases and LayerNorms)", at_least=0)
    warmup: float = opt(0.06, "share of the budget spent raising the learning rate")
    schedule: str = opt("linear", "decay after warmup: linear, cosine or constant")
    clip: float = opt(1.0, "clip the gradient norm to this (0: no clipping)", at_least=0)
    precision: str = opt("auto", "bf16, fp32 or auto (bf16 where the hardware has it)")
    compile: bool = opt(False, "compile the model with torch.compile")
    seed: int = opt(0, "seed of data order, masks, dropout and initialisation", at_least=0)
    epochs: float = opt(0.0, "passes over the training data (default 1 if no budget is set)", at_least=0)
    max_steps: int = opt(0, "stop after this many optimizer steps (0: no limit)", at_least=0)
    max_tokens: int = opt(0, "stop after this many training tokens (0: no limit)", at_least=0)
    time_budget: str = opt("", "stop after this wall time, e.g. 90s, 30m, 2h")
    eval_every: int = opt(200, "validate every this many steps (0: only at the end)", at_least=0)
    eval_batches: int = opt(10, "batches of held-out data per validation")
    checkpoint_every: int = opt(500, "checkpoint every this many steps (0: only on signals)", at_least=0)
    log_every: int = opt(10, "log training metrics every this many steps")
    threads: int = opt(0, "CPU threads for torch (0: torch's default)", at_least=0)
    device: str = opt("auto", "cpu, cuda, cuda:N or auto")

    def __post_init__(self) -> None:
        if self.schedule not in ("linear", "cosine", "constant"):
            raise WarmstartError(f"--schedule {self.schedule}: use linear, cosine or constant")
        check_precision(self.precision, "--precision")
        for name in ("batch_size", "eval_batches", "log_every"):
            if getattr(self, name) < 1:
                raise WarmstartError(f"{option_name(name)}: must be at least 1")
        if not 0.0 <= self.warmup < 1.0:
            raise WarmstartError(f"--warmup {self.warmup}: must be a share in [0, 1)")


@dataclass
class Monitor:
    """Keep the weights of the best validation, and optionally stop when it stops improving.

    ``key`` is a validation record's key (``valid_loss``, ``valid_task_accuracy``...), or
    several keys whose mean is watched (multi-task: every task's accuracy counts);
    ``patience`` validations in a row without improvement end the run (0: never).
    """

    key: str | tuple[str, ...] = "valid_loss"
    mode: str = "min"
    patience: int = 0

    @property
    def name(self) -> str:
        return self.key if isinstance(self.key, str) else "mean_" + "_".join(self.key)

    def value(self, record: dict[str, Any]) -> float | None:
        """The watched score of a validation record (None if it lacks a key)."""
        keys = (self.key,) if isinstance(self.key, str) else self.key
        if not all(k in record for k in keys):
            return None
        return sum(float(record[k]) for k in keys) / len(keys)

    def better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best if self.mode == "min" else value > best


class Trainable(Protocol):
    def __call__(
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


@dataclass
class TrainResult:
    steps: int
    tokens: int
    seconds: float
    stopped_by: str
    history: list[dict[str, Any]] = field(default_factory=list)
    #: The settings the loop ran with, after the caller filled in what the user left to it.
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def final_valid(self) -> dict[str, Any]:
        return next((r for r in reversed(self.history) if "valid_loss" in r), {})


def learning_rate(config: TrainConfig, progress: float) -> float:
    """The learning rate at ``progress`` (0..1 of the budget): warmup, then decay."""
    if config.warmup and progress < config.warmup:
        return config.lr * progress / config.warmup
    if config.schedule == "constant":
        return config.lr
    rest = (progress - config.warmup) / max(1e-12, 1.0 - config.warmup)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, rest)))
    return config.lr * max(0.0, 1.0 - rest)


def train(
    module: nn.Module,
    batches: BatchSource,
    config: TrainConfig,
    *,
    budget: Budget,
    out: Path | None = None,
    fingerprint: dict[str, Any] | None = None,
    progress: bool = True,
    monitor: Monitor | None = None,
    on_validate: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``module`` on ``batches`` until ``budget`` runs out; checkpoint into ``out``.

    ``module(batch, norms)`` returns (loss, summed statistics) for a slice of a prepared
    global batch; see :mod:`warmstart.train.batches`. If ``out/checkpoint`` holds a run with
    the same ``fingerprint``, training continues from there.

    A module may also define ``optimizer_groups(weight_decay)`` (AdamW groups, each with an
    optional ``lr_scale``: discriminative learning rates) and ``on_step(progress)`` (called
    before every step with the share of the budget used: gradual unfreezing). With
    ``monitor``, the module ends with the weights of its best validation. ``on_validate(n,
    record)`` is called after the ``n``-th validation (1, 2, ...; not the one at step 0) with
    its logged record; an exception it raises (a tuner pruning the run) ends training.
    """
    # Denormal floats (tiny Adam moments late in a run) are 10x slower on x86 CPUs. The flag
    # is process-wide: set it for the run only, so that the caller's numpy/torch arithmetic
    # afterwards (e.g. reading vectors with denormal values) is not silently flushed.
    flushing = torch.set_flush_denormal(True)
    try:
        with heap_kept():
            return _run(module, batches, config, budget=budget, out=out,
                        fingerprint=fingerprint, progress=progress, monitor=monitor,
                        on_validate=on_validate)
    finally:
        if flushing:
            torch.set_flush_denormal(False)


# glibc's mallopt parameters, and their defaults.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536


@contextlib.contextmanager
def heap_kept() -> Iterator[None]:
    """Keep freed memory in the heap for reuse while training (glibc only; else a no-op).

    glibc serves every allocation over 32 MB (a batch's logits over the vocabulary) with a
    fresh ``mmap`` and returns it on free, so each step pays page faults on its largest
    tensors: over a quarter of an MLM step on two cores. PyTorch's CPU tuning guide swaps in
    jemalloc or tcmalloc for this; telling glibc not to map or trim does the same in-process.
    Restored (to glibc's defaults) after the run.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    except (OSError, AttributeError):  # not glibc
        libc = None
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)


def _run(
    module: nn.Module,
    batches: BatchSource,
    config: TrainConfig,
    *,
    budget: Budget,
    out: Path | None,
    fingerprint: dict[str, Any] | None,
    progress: bool,
    monitor: Monitor | None,
    on_validate: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    dist = Distributed.from_env(device.type)
    if dist.world > 1 and device.type == "cuda":
        device = resolve_device(config.device, dist.local_rank)
        torch.cuda.set_device(device)
    if config.batch_size % dist.world:
        raise WarmstartError(
            f"--batch-size {config.batch_size} does not split over {dist.world} processes; "
            "use a multiple of the number of processes"
        )
    torch.manual_seed(config.seed)
    module.to(device)
    groups_of = getattr(module, "optimizer_groups", None)
    optimizer = torch.optim.AdamW(
        groups_of(config.weight_decay) if groups_of else param_groups(module, config.weight_decay),
        lr=config.lr, betas=(0.9, 0.98), eps=1e-6,
        fused=True,  # one kernel over all parameters: 7x faster than the default on CPU
    )
    fingerprint = fingerprint or {}
    state = Progress()
    if out is not None:
        state = load_checkpoint(out, module=module, optimizer=optimizer, fingerprint=fingerprint) or state
        if state.step and dist.main:
            print(f"resuming from {out}/checkpoint at step {state.step} "
                  f"({state.tokens:,} tokens, {state.elapsed:.0f} s)", file=sys.stderr)

    model: Any = module
    if dist.world > 1:
        model = nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        model = torch.compile(model)

    autocast = bf16_autocast(device, config.precision)
    share = config.batch_size // dist.world
    micro = config.micro_batch_size or share
    bar = _progress_bar(progress and dist.main, state)
    stopped_by: str | None = None
    window: dict[str, float] = {}
    window_start = time.perf_counter()
    window_tokens = window_steps = 0
    run_start = time.perf_counter() - state.elapsed

    n_validations = 0  # after step 0, in this process: what on_validate numbers

    def validate() -> bool:
        """Validate and log; with a monitor, keep the best weights. True: stop early."""
        nonlocal n_validations
        record = _validate(model, module, batches, config, dist, device, autocast, state)
        state.history.append(record)
        if on_validate is not None and state.step > 0:
            n_validations += 1
            on_validate(n_validations, record)
        # Step 0 is where the curve starts, not a candidate; a tie goes to the later step.
        if monitor is None or state.step == 0:
            return False
        value = monitor.value(record)
        if value is None:
            return False
        if value == state.best.get("value") or monitor.better(value, state.best.get("value")):
            state.best = {"value": value, "step": state.step, "waited": 0}
            state.best_state = {k: v.detach().to("cpu", copy=True)
                                for k, v in module.state_dict().items()}
            return False
        state.best["waited"] = state.best.get("waited", 0) + 1
        return bool(monitor.patience) and state.best["waited"] >= monitor.patience

    def checkpoint() -> None:
        if out is not None and dist.main:
            save_checkpoint(out, module=module, optimizer=optimizer, progress=state,
                            fingerprint=fingerprint)
        dist.barrier()

    early_stop = False
    if config.eval_every and state.step == 0:  # where the curve starts
        early_stop = validate()
        window_start = time.perf_counter()  # training speed, not validation's
    on_step = getattr(module, "on_step", None)
    with StopOnSignal() as stop:
        while True:
            elapsed, signalled = dist.max([time.perf_counter() - run_start, float(stop.signal or 0)])
            state.elapsed = elapsed
            stopped_by = budget.reached(step=state.step, tokens=state.tokens, elapsed=elapsed)
            if early_stop:
                stopped_by = f"early stopping ({monitor.name if monitor else ''})"
            if signalled:
                checkpoint()
                bar.close()
                dist.close()
                raise RunInterrupted(
                    f"stopped by signal {int(signalled)} at step {state.step}; checkpoint saved "
                    f"in {out}/checkpoint — run the same command again to continue"
                    if out is not None else f"stopped by signal {int(signalled)}"
                )
            if stopped_by:
                break

            fraction = budget.progress(step=state.step, tokens=state.tokens, elapsed=elapsed)
            lr = learning_rate(config, fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            if on_step is not None:
                on_step(fraction)

            prepared, n_tokens = batches.train_batch(state.step)
            torch.manual_seed(mix_seed(config.seed, state.step, dist.rank))  # dropout
            module.train()
            stats = _accumulate(model, prepared, rows=(dist.rank * share, (dist.rank + 1) * share),
                                micro=micro, world=dist.world, device=device, autocast=autocast)
            if config.clip:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(module.parameters(), config.clip))
                stats["grad_norm"] = grad_norm / dist.world  # summed over processes when logged
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            state.step += 1
            state.tokens += n_tokens
            window_tokens += n_tokens
            window_steps += 1  # fewer than log_every after a resume
            for k, v in stats.items():
                window[k] = window.get(k, 0.0) + v
            if not math.isfinite(stats["loss"]):
                raise WarmstartError(
                    f"the loss became {stats['loss']} at step {state.step}; lower --lr "
                    "(or raise --warmup) and run again"
                )

            if state.step % config.log_every == 0:
                now = time.perf_counter()
                record = _summarise(dist.sum(window), steps=window_steps)
                record.update(step=state.step, tokens=state.tokens, lr=lr,
                              elapsed=round(now - run_start, 2),
                              tokens_per_second=round(window_tokens * 1.0 / max(now - window_start, 1e-9), 1))
                state.history.append(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_second']:.0f}")
                window, window_tokens, window_steps, window_start = {}, 0, 0, now
            bar.update(round(100 * budget.progress(step=state.step, tokens=state.tokens,
                                                   elapsed=time.perf_counter() - run_start), 2) - bar.n)
            if config.eval_every and state.step % config.eval_every == 0:
                eval_start = time.perf_counter()
                early_stop = validate()
                window_start += time.perf_counter() - eval_start  # training speed only
            if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                saving_start = time.perf_counter()
                checkpoint()
                window_start += time.perf_counter() - saving_start

    # The reported final validation is the model's at the last step. Checking only the last
    # record missed a run stopped between two logs: its last record was then an earlier
    # validation (step 0's, when a time budget ends a run before its first log).
    last_valid = next((r for r in reversed(state.history) if "valid_loss" in r), None)
    if last_valid is None or last_valid["step"] != state.step:
        validate()
    if monitor is not None and state.best_state is not None:
        module.load_state_dict(state.best_state)
        state.history.append({"step": state.step, "restored_best_step": state.best["step"],
                              f"best_{monitor.name}": state.best["value"]})
    bar.close()
    dist.barrier()
    return TrainResult(steps=state.step, tokens=state.tokens, seconds=state.elapsed,
                       stopped_by=stopped_by, history=state.history,
                       config=dataclasses.asdict(config))


def _accumulate(
    model: Trainable,
    prepared: Prepared,
    *,
    rows: tuple[int, int],
    micro: int,
    world: int,
    device: torch.device,
    autocast: torch.autocast,
) -> dict[str, float]:
    """Forward and backward this process's rows in micro-batches; return summed statistics."""
    totals: dict[str, float] = {"loss": 0.0}
    starts = range(rows[0], rows[1], micro)
    for i, start in enumerate(starts):
        batch = {k: v.to(device, non_blocking=True)
                 for k, v in prepared.rows(start, min(start + micro, rows[1])).items()}
        last = i == len(starts) - 1
        sync = contextlib.nullcontext() if last or world == 1 else model.no_sync()  # type: ignore[attr-defined]
        with sync:
            with autocast:
                loss, stats = model(batch, prepared.norms)
            # DDP averages gradients over processes; each loss is a share of the global sum.
            (loss * world).backward()
        totals["loss"] += float(loss.detach())
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return totals


def _summarise(window: dict[str, float], *, steps: int) -> dict[str, Any]:
    """Turn summed statistics into a log record: mean loss, accuracies."""
    record: dict[str, Any] = {"loss": round(window.get("loss", float("nan")) / steps, 5)}
    if "grad_norm" in window:
        record["grad_norm"] = round(window["grad_norm"] / steps, 4)
    for key, value in window.items():
        if key.endswith("_correct"):
            name = key[: -len("_correct")]
            total = window.get(f"{name}_total", 0.0)
            if total:
                record[f"{name}_accuracy"] = round(value / total, 5)
        elif key.endswith("_loss") and key != "loss":
            total = window.get(f"{key[:-5]}_total", 0.0)
            if total:
                record[key] = round(value / total, 5)
    return record


@torch.no_grad()
def _validate(
    model: Any,
    module: nn.Module,
    batches: BatchSource,
    config: TrainConfig,
    dist: Distributed,
    device: torch.device,
    autocast: torch.autocast,
    state: Progress,
) -> dict[str, Any]:
    """Mean loss and accuracies on the fixed held-out batches."""
    held_out = batches.valid_batches(config.eval_batches)
    record: dict[str, Any] = {"step": state.step, "tokens": state.tokens}
    if not held_out:
        return record
    module.eval()
    totals: dict[str, float] = {}
    for prepared in held_out:
        n = prepared.n_rows
        lo, hi = n * dist.rank // dist.world, n * (dist.rank + 1) // dist.world
        batch = {k: v.to(device) for k, v in prepared.rows(lo, hi).items()}
        with autocast:
            loss, stats = module(batch, prepared.norms)
        totals["loss"] = totals.get("loss", 0.0) + float(loss)
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + float(v)
    module.train()
    summary = _summarise(dist.sum(totals), steps=len(held_out))
    record.update({f"valid_{k}": v for k, v in summary.items()})
    return record


def _progress_bar(enabled: bool, state: Progress) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=100, initial=0, disable=not enabled, unit="%", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.0f}/{total}% [{elapsed}<{remaining}{postfix}]")
