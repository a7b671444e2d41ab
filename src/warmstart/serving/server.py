"""The state of one serving process: the loaded models, a micro-batcher per model and
operation, the one inference thread and the metrics; and the checks every route shares."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from warmstart.serving.batching import MicroBatcher, QueueFull
from warmstart.serving.config import ServeConfig
from warmstart.serving.errors import ApiError, check_text
from warmstart.serving.metrics import Labels, Metrics
from warmstart.serving.models import ServedModel


class Server:
    """The models, their batchers, the inference thread and the metrics of one process."""

    def __init__(self, models: dict[str, ServedModel], config: ServeConfig) -> None:
        self.models = models
        self.config = config
        self.metrics = Metrics()
        # One inference thread: forward passes never overlap (each already uses every core
        # torch is given), and never run on the event loop.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warmstart-infer")
        self.batchers: dict[tuple[str, str, str], MicroBatcher] = {}
        for name, m in models.items():
            if m.classifier is not None:
                for task in m.classifier.tasks:
                    self._batcher(name, "classify", task, self._classify_fn(m, task))
            if m.embedder is not None:
                self._batcher(name, "embed", "", self._embed_fn(m))

    def _batcher(self, name: str, op: str, task: str, fn: Callable[[list[str]], list[Any]]) -> None:
        cfg = self.config

        def on_batch(texts: int, requests: int, seconds: float) -> None:
            self.metrics.batch(name, op, texts, requests, seconds)

        self.batchers[(name, op, task)] = MicroBatcher(
            fn, self.executor, max_batch=cfg.max_batch, max_wait=cfg.max_wait_ms / 1000,
            max_queue=cfg.max_queue, on_batch=on_batch)

    @staticmethod
    def _classify_fn(m: ServedModel, task: str) -> Callable[[list[str]], list[Any]]:
        clf = m.classifier
        assert clf is not None

        def run(texts: list[str]) -> list[Any]:
            return list(zip(clf.predict_proba(texts, task=task), m.cuts(texts), strict=True))

        return run

    @staticmethod
    def _embed_fn(m: ServedModel) -> Callable[[list[str]], list[Any]]:
        embedder = m.embedder
        assert embedder is not None

        def run(texts: list[str]) -> list[Any]:
            return list(zip(embedder.embed(texts), embedder.cut(texts), strict=True))

        return run

    def queues(self) -> dict[Labels, int]:
        """Texts waiting per (model, operation), for the metrics."""
        out: dict[Labels, int] = {}
        for (name, op, _), b in self.batchers.items():
            key = (("model", name), ("op", op))
            out[key] = out.get(key, 0) + b.waiting
        return out

    async def close(self) -> None:
        """Stop the batchers, then the inference thread."""
        for b in self.batchers.values():
            await b.stop()
        self.executor.shutdown(wait=True)

    # -- what the routes share ---------------------------------------------------------------

    def model(self, name: str, capability: str) -> ServedModel:
        """The model ``name`` if it can do ``capability`` (any, when empty); a 404 or 400 if not."""
        m = self.models.get(name)
        if m is None:
            raise ApiError(404, f"no model named {name!r}; loaded: {', '.join(self.models)} "
                                "(GET /v1/models lists them)", field="name")
        if capability and capability not in m.capabilities:
            raise ApiError(400, m.cannot(capability), field="name")
        return m

    def texts(self, texts: list[str]) -> tuple[list[str], list[bool]]:
        """The texts as the model will read them (cut to max_chars), and which were cut."""
        cfg = self.config
        if len(texts) > cfg.max_texts:
            raise ApiError(413, f"{len(texts)} texts: at most {cfg.max_texts} per request; "
                                "split them over several requests", field="texts")
        out, cut = [], []
        for i, t in enumerate(texts):
            check_text(t, f"texts[{i}]")
            if not t.strip():
                raise ApiError(422, f"texts[{i}] is blank; every text needs a word",
                               field=f"texts[{i}]")
            out.append(t[:cfg.max_chars])
            cut.append(len(t) > cfg.max_chars)
        return out, cut

    async def run(self, name: str, op: str, task: str, texts: list[str]) -> list[Any]:
        """``texts`` through the batcher of (model, operation, task); a 503 when it is full."""
        try:
            return await self.batchers[(name, op, task)].submit(texts)
        except QueueFull:
            self.metrics.rejected[(("model", name), ("op", op))] += 1
            raise ApiError(503, f"model {name!r} is busy ({self.config.max_queue} texts "
                                "queued at most); retry shortly",
                           headers={"Retry-After": "1"}) from None


def torch_threads(config: ServeConfig) -> int:
    """Torch threads per worker: --threads, or the usable cores shared among the workers."""
    if config.threads:
        return config.threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // config.workers)
