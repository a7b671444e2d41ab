"""``warmstart serve``: classifiers, encoders and word vectors over HTTP (FastAPI + uvicorn).

    >>> serve(["sentiment=runs/clf", "vecs=runs/vectors"], port=8000)   # doctest: +SKIP

The server reads the same artifact folders as the CLI and adds what serving needs: dynamic
micro-batching (:mod:`.batching`), limits on what a request may hold, JSON errors that name
the field, an API key, Prometheus metrics (:mod:`.metrics`), and a graceful stop on SIGTERM
(requests in flight finish, then the process exits 0). The routes are in :mod:`.app`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warmstart.config import split_settings
from warmstart.errors import WarmstartError
from warmstart.serving.config import API_KEY_ENV, ServeConfig

if TYPE_CHECKING:
    from warmstart.serving.models import ServedModel

# The CLI imports this package for ServeConfig's options: torch, FastAPI and the models are
# imported only when a server starts.
__all__ = ["ServeConfig", "create_app", "serve"]

#: How ``serve`` hands its models and settings to worker processes (``--workers N``).
WORKER_ENV = "WARMSTART_SERVE_SPEC"


def create_app(models: dict[str, ServedModel], config: ServeConfig, *, api_key: str = "") -> Any:
    """The ASGI app serving ``models`` (see :mod:`warmstart.serving.app`)."""
    from warmstart.serving.app import create_app as make

    return make(models, config, api_key=api_key)


def serve(models: Sequence[str] | dict[str, str], *, echo: Callable[[str], None] = print,
          **options: Any) -> None:
    """Serve ``models`` (``NAME=FOLDER`` strings, or {name: folder}) until SIGTERM or Ctrl-C.

    ``options`` are the fields of :class:`ServeConfig`, the names of the CLI's options. Every
    model is loaded (and checked) before the port opens; with ``workers`` above 1, each
    worker process loads them again.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise WarmstartError("warmstart serve needs FastAPI and uvicorn: "
                             "pip install 'warmstart[serve]'") from None
    import torch

    from warmstart.serving.models import load_models, parse_model_specs
    from warmstart.serving.server import torch_threads

    (values,) = split_settings((ServeConfig,), options, where="options")
    config = ServeConfig(**values)
    specs = dict(models) if isinstance(models, dict) else parse_model_specs(models)
    api_key = config.api_key or os.environ.get(API_KEY_ENV, "")

    threads = torch_threads(config)
    torch.set_num_threads(threads)
    with contextlib.ExitStack() as cleanup:
        if config.runtime == "onnx":
            from warmstart.serving.models import export_for_onnx

            into = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="warmstart-onnx-")))
            specs = export_for_onnx(specs, into, echo=echo)
        loaded = load_models(specs, precision=config.precision, device=config.device,
                             batch_size=config.batch_size, runtime=config.runtime, threads=threads,
                             compile=config.compile)
        for name, m in loaded.items():
            echo(f"{name}: {m.kind} from {m.path} on {m.runtime} ({', '.join(m.capabilities)})")
        _run(loaded, specs, config, api_key, echo)


def _run(loaded: dict[str, ServedModel], specs: dict[str, str], config: ServeConfig,
         api_key: str, echo: Callable[[str], None]) -> None:
    """Listen with uvicorn until a stop: one process, or ``config.workers`` that each load
    ``specs`` again (``loaded`` is emptied first, so this process holds no model)."""
    import uvicorn

    if config.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        echo(f"warning: listening on {config.host} without --api-key: anyone who can reach "
             "the port can use the models")
    run: dict[str, Any] = dict(host=config.host, port=config.port, log_level="info",
                               access_log=config.access_log, server_header=False,
                               timeout_keep_alive=config.keep_alive,
                               timeout_graceful_shutdown=config.shutdown_timeout or None)
    # uvicorn's parent process leaves its listening socket to the garbage collector.
    warnings.filterwarnings("ignore", message="unclosed <socket", category=ResourceWarning)
    with _exit_zero_on_stop():
        if config.workers == 1:
            uvicorn.run(create_app(loaded, config, api_key=api_key), **run)
            return
        # Each worker is a fresh process (spawned) that loads the models itself: they were
        # loaded here once only so that a bad folder is one error line, not N tracebacks.
        loaded.clear()
        os.environ[WORKER_ENV] = json.dumps({"models": specs, "config": config.to_dict(),
                                             "api_key": api_key})
        uvicorn.run("warmstart.serving:worker_app", factory=True, workers=config.workers, **run)


def worker_app() -> Any:
    """The app of one worker process of ``serve(..., workers=N)``, made from the settings the
    parent left in the environment (uvicorn imports this by name in each worker)."""
    import torch

    from warmstart.serving.models import load_models
    from warmstart.serving.server import torch_threads

    spec = json.loads(os.environ[WORKER_ENV])
    config = ServeConfig(**spec["config"])
    threads = torch_threads(config)
    torch.set_num_threads(threads)
    try:
        models = load_models(spec["models"], precision=config.precision, device=config.device,
                             batch_size=config.batch_size, runtime=config.runtime,
                             threads=threads, compile=config.compile)
    except WarmstartError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)  # uvicorn's STARTUP_FAILURE: the parent stops instead of restarting it
    return create_app(models, config, api_key=spec["api_key"])


@contextmanager
def _exit_zero_on_stop() -> Iterator[None]:
    """After a graceful stop uvicorn raises SIGTERM/SIGINT again for the handler that was
    there before it; this one lets ``serve`` return, so the process exits 0."""
    stops = (signal.SIGTERM, signal.SIGINT)
    before = {s: signal.signal(s, lambda *_: None) for s in stops}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
