"""The HTTP API: FastAPI routes over the loaded models, behind a guard for keys and limits.

    GET  /health                           liveness (never needs the API key)
    GET  /v1/models                        what is loaded, with each artifact's provenance
    GET  /v1/models/{name}                 one of them
    POST /v1/models/{name}/classify        {"texts": [...], "top_k": 1, "task": null}
    POST /v1/models/{name}/embed           {"texts": [...]}
    GET  /v1/models/{name}/neighbors       ?word=good&k=10
    POST /v1/models/{name}/analogy         {"a": "man", "b": "king", "c": "woman", "k": 10}
    GET  /v1/models/{name}/map             ?n=300: the n most frequent words laid out in 2-D (PCA)
    GET  /metrics                          Prometheus text format
    GET  /, /static/...                    the explorer page (never needs the API key: it asks for it)
    GET  /openapi.json, /docs              the schema, and FastAPI's page for it

Every error is JSON, ``{"error": {"status": 422, "field": "texts[3]", "message": "..."}}``,
with a 4xx status for anything the client can fix: malformed JSON 400, a missing or bad API
key 401, an unknown model or route 404, a model that cannot do what was asked 400, too many
texts or too large a body 413, a body not sent as ``application/json`` 415, a wrong type, a blank text, an empty list or a word outside
the vocabulary 422; a full queue 503 with ``Retry-After``. Texts longer than ``max_chars``
characters are cut, and so are texts longer than the model's ``max_len`` pieces; either way
the response marks the text ``truncated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.util
import json
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from warmstart.errors import WarmstartError
from warmstart.serving.batching import MicroBatcher, QueueFull
from warmstart.serving.config import ServeConfig
from warmstart.serving.metrics import Labels, Metrics
from warmstart.serving.models import ServedModel

#: Routes that answer without the API key: a load balancer's health check has none, and the
#: explorer page is where a user pastes the key (the page itself holds no data).
OPEN_ROUTES = ("/health", "/")
OPEN_PREFIXES = ("/static/", "/docs-static/")

#: The explorer page's files (index.html, app.js, style.css).
STATIC_DIR = Path(__file__).parent / "static"
#: Where the API docs pages (/docs, /redoc) find Swagger UI's and ReDoc's files.
DOCS_STATIC = "/docs-static"


class ApiError(Exception):
    """An answer other than 200, with the request field it is about."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.headers = headers or {}


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "field": field, "message": message}}


def error_response(status: int, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, field), status_code=status, headers=headers)


# -- requests and responses ------------------------------------------------------------------


class _Strict(BaseModel):
    # No coercion (1 is not "1"), no unknown fields ("text" for "texts" is an error).
    model_config = ConfigDict(extra="forbid", strict=True)


class EmbedRequest(_Strict):
    texts: list[str] = Field(min_length=1, description="the texts, one vector each")


class ClassifyRequest(EmbedRequest):
    top_k: int = Field(1, ge=1, le=1000, description="ranked labels to return per text")
    task: str | None = Field(None, description="the head of a multi-task classifier")


class AnalogyRequest(_Strict):
    a: str = Field(min_length=1, description="a is to b ...")
    b: str = Field(min_length=1)
    c: str = Field(min_length=1, description="... as c is to the answer")
    k: int = Field(10, ge=1, le=1000)
    method: Literal["add", "mul"] = "add"
    restrict_vocab: int | None = Field(None, ge=1, description="only the N most frequent words")


class Ranked(BaseModel):
    label: str
    probability: float


class ClassifyResult(BaseModel):
    label: str | None = Field(None, description="the predicted class (single-label tasks)")
    labels: list[str] | None = Field(None, description="labels at or above the threshold "
                                                       "(multi-label tasks)")
    probabilities: dict[str, float]
    top_k: list[Ranked]
    truncated: bool


class ClassifyResponse(BaseModel):
    model: str
    task: str
    multi_label: bool
    threshold: float | None
    results: list[ClassifyResult]


class EmbedResponse(BaseModel):
    model: str
    dim: int
    normalized: bool
    embeddings: list[list[float]]
    truncated: list[bool]


class Neighbor(BaseModel):
    word: str
    similarity: float


class NeighborsResponse(BaseModel):
    model: str
    word: str
    in_vocabulary: bool
    neighbors: list[Neighbor]


class AnalogyResponse(BaseModel):
    model: str
    query: dict[str, str]
    answers: list[Neighbor]


class MapResponse(BaseModel):
    model: str
    words: list[str] = Field(description="the most frequent words, most frequent first")
    method: Literal["pca", "umap"] = Field(description="how the words were laid out")
    points: list[list[float]] = Field(description="(x, y) of each word: its first two "
                                                  "principal components, or its UMAP position")
    explained: list[float] | None = Field(description="PCA: share of the variance each axis "
                                                      "holds (UMAP: null)")


# -- the server's state ----------------------------------------------------------------------


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
        out: dict[Labels, int] = {}
        for (name, op, _), b in self.batchers.items():
            key = (("model", name), ("op", op))
            out[key] = out.get(key, 0) + b.waiting
        return out

    async def close(self) -> None:
        for b in self.batchers.values():
            await b.stop()
        self.executor.shutdown(wait=True)

    # -- what the routes share ---------------------------------------------------------------

    def model(self, name: str, capability: str) -> ServedModel:
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
        try:
            return await self.batchers[(name, op, task)].submit(texts)
        except QueueFull:
            self.metrics.rejected[(("model", name), ("op", op))] += 1
            raise ApiError(503, f"model {name!r} is busy ({self.config.max_queue} texts "
                                "queued at most); retry shortly",
                           headers={"Retry-After": "1"}) from None


def check_text(text: str, field: str) -> None:
    """A 422 for a string that is not valid Unicode (a lone surrogate from JSON's \\ud800)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, f"{field} is not valid Unicode (a lone surrogate)",
                       field=field) from None


# -- the app ---------------------------------------------------------------------------------


def create_app(models: dict[str, ServedModel], config: ServeConfig, *,
               api_key: str = "") -> Guard:
    """The ASGI app serving ``models``: FastAPI routes inside :class:`Guard` (API key, body
    size limit, request metrics)."""
    server = Server(models, config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await server.close()  # after uvicorn has let requests in flight finish

    offline = _offline_docs_files()
    app = FastAPI(title="warmstart", version=_package_version(), lifespan=lifespan,
                  description="Classify, embed and query warmstart models.",
                  docs_url=None if offline else "/docs", redoc_url=None if offline else "/redoc")
    app.state.server = server
    _add_error_handlers(app)
    _add_routes(app, server)
    _add_explorer(app)
    if offline:
        _add_docs(app, offline)
    return Guard(app, server, api_key=api_key)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("warmstart")
    except PackageNotFoundError:  # run from a source tree
        return "0+unknown"


def _field(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.message, e.field, e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = list(e.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            detail = (errors[0].get("ctx") or {}).get("error", "")
            return error_response(400, f"the body is not valid JSON ({detail})", "body")
        found = [{"field": _field(err.get("loc", ())), "message": str(err.get("msg", ""))}
                 for err in errors]
        first = found[0] if found else {"field": "body", "message": "invalid request"}
        if first["field"] == "body" and isinstance(errors[0].get("input"), bytes):
            # FastAPI reads a body as JSON only when the request says it is
            return error_response(415, "send the body as JSON, with the header "
                                       "'Content-Type: application/json'", "body")
        body = error_body(422, f"{first['field']}: {first['message']}", first["field"])
        body["error"]["errors"] = found
        return JSONResponse(body, status_code=422)

    @app.exception_handler(WarmstartError)
    async def user_error(_: Request, e: WarmstartError) -> JSONResponse:
        return error_response(422, str(e))

    @app.exception_handler(Exception)
    async def bug(_: Request, e: Exception) -> JSONResponse:
        # A bug, not the client's doing: logged with its traceback by uvicorn; the worker
        # and the other requests go on.
        return error_response(500, f"internal error ({type(e).__name__}); please report it")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        field = "body" if e.status_code == 400 else None
        return error_response(e.status_code, str(e.detail), field, dict(e.headers or {}))


def _add_routes(app: FastAPI, server: Server) -> None:
    cfg = server.config

    @app.get("/health", tags=["server"])
    async def health() -> dict[str, Any]:
        """Whether the server answers, and the models it holds."""
        return {"status": "ok", "models": list(server.models)}

    @app.get("/metrics", tags=["server"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Request counts and latencies, batch sizes and queues (Prometheus text format)."""

        def info() -> list[str]:
            lines = ["# HELP warmstart_model_info a model this server holds",
                     "# TYPE warmstart_model_info gauge"]
            lines += [f'warmstart_model_info{{model="{n}",kind="{m.kind}"}} 1'
                      for n, m in server.models.items()]
            return lines

        return PlainTextResponse(server.metrics.render(server.queues(), info),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models", tags=["models"])
    async def list_models() -> dict[str, Any]:
        """Every model loaded: kind, what it answers, labels or dimension, and provenance
        (its warmstart.json: settings, parent artifact, data, when, which version)."""
        return {"models": [m.describe() for m in server.models.values()]}

    @app.get("/v1/models/{name}", tags=["models"])
    async def get_model(name: str) -> dict[str, Any]:
        """One model, as in the list."""
        return server.model(name, "").describe()

    @app.post("/v1/models/{name}/classify", tags=["models"], response_model=None,
              responses={200: {"model": ClassifyResponse}})
    async def classify(name: str, request: ClassifyRequest) -> JSONResponse:
        """Labels and probabilities of each text (multi-label tasks: every label at or above
        the threshold the classifier was saved with)."""
        m = server.model(name, "classify")
        clf = m.classifier
        assert clf is not None
        if request.task is not None and request.task not in clf.tasks:
            raise ApiError(422, f"task {request.task!r}: model {name!r} has "
                                f"{', '.join(clf.tasks)}", field="task")
        task = clf.task(request.task)
        texts, chars_cut = server.texts(request.texts)
        rows = await server.run(name, "classify", task.name, texts)
        threshold = clf.thresholds.get(task.name, 0.5) if task.multi_label else None
        results = []
        for (p, model_cut), cut in zip(rows, chars_cut, strict=True):
            ranked = np.argsort(-p, kind="stable")
            result: dict[str, Any] = {
                "probabilities": {label: float(p[j]) for j, label in enumerate(task.labels)},
                "top_k": [{"label": task.labels[j], "probability": float(p[j])}
                          for j in ranked[:request.top_k]],
                "truncated": bool(cut or model_cut)}
            if task.multi_label:
                result["labels"] = [task.labels[j] for j in ranked if p[j] >= threshold]
            else:
                result["label"] = task.labels[int(ranked[0])]
            results.append(result)
        server.metrics.served(name, "classify", len(texts), sum(r["truncated"] for r in results))
        return JSONResponse({"model": name, "task": task.name, "multi_label": task.multi_label,
                             "threshold": threshold, "results": results})

    @app.post("/v1/models/{name}/embed", tags=["models"], response_model=None,
              responses={200: {"model": EmbedResponse}})
    async def embed(name: str, request: EmbedRequest) -> JSONResponse:
        """One vector per text (see ``GET /v1/models/{name}`` for how it is made)."""
        m = server.model(name, "embed")
        assert m.embedder is not None
        texts, chars_cut = server.texts(request.texts)
        rows = await server.run(name, "embed", "", texts)
        truncated = [bool(c or model_cut) for (_, model_cut), c in zip(rows, chars_cut, strict=True)]
        server.metrics.served(name, "embed", len(texts), sum(truncated))
        return JSONResponse({"model": name, "dim": m.embedder.dim,
                             "normalized": m.embedder.normalized,
                             "embeddings": [v.tolist() for v, _ in rows], "truncated": truncated})

    @app.get("/v1/models/{name}/neighbors", tags=["models"], response_model=None,
             responses={200: {"model": NeighborsResponse}})
    async def neighbors(
        name: str, word: str = Query(min_length=1, max_length=cfg.max_chars),
        k: int = Query(10, ge=1, le=1000),
        restrict_vocab: int | None = Query(None, ge=1),
    ) -> JSONResponse:
        """The k words nearest to ``word`` by cosine (word vectors; with subwords, a word
        outside the vocabulary is composed from its character n-grams)."""
        kv = server.model(name, "neighbors").vectors
        assert kv is not None
        check_text(word, "word")
        if not kv.has_vector(word):
            raise ApiError(422, f"word {word!r} is not in the vocabulary of model {name!r} "
                                f"({len(kv):,} words) and has no subwords to compose it from",
                           field="word")
        found = await asyncio.to_thread(kv.most_similar, word, topn=k,
                                        restrict_vocab=restrict_vocab)
        return JSONResponse({"model": name, "word": word, "in_vocabulary": word in kv,
                             "neighbors": [{"word": w, "similarity": s} for w, s in found]})

    @app.post("/v1/models/{name}/analogy", tags=["models"], response_model=None,
              responses={200: {"model": AnalogyResponse}})
    async def analogy(name: str, request: AnalogyRequest) -> JSONResponse:
        """Words d such that a is to b as c is to d (3CosAdd, or 3CosMul with method mul),
        best first, a, b and c left out."""
        kv = server.model(name, "analogy").vectors
        assert kv is not None
        for field in ("a", "b", "c"):
            word = getattr(request, field)
            check_text(word, field)
            if not kv.has_vector(word):
                raise ApiError(422, f"{field}: word {word!r} is not in the vocabulary of model "
                                    f"{name!r} and has no subwords to compose it from",
                               field=field)
        found = await asyncio.to_thread(kv.analogy, request.a, request.b, request.c,
                                        topn=request.k, method=request.method,
                                        restrict_vocab=request.restrict_vocab)
        return JSONResponse({"model": name,
                             "query": {"a": request.a, "b": request.b, "c": request.c},
                             "answers": [{"word": w, "similarity": s} for w, s in found]})


def word_map(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2-D PCA of ``vectors`` (n, dim) -> points (n, 2) and each axis's share of the variance.

    The rows are made unit length first, so the map shows directions (what cosine compares),
    not how often a word was seen.
    """
    x = vectors.astype(np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x -= x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)  # u: (n, r), s: (r,)
    k = min(2, len(s))
    points = np.zeros((len(x), 2))
    points[:, :k] = u[:, :k] * s[:k]
    total = float((s ** 2).sum()) or 1.0
    explained = np.zeros(2)
    explained[:k] = s[:k] ** 2 / total
    return points, explained


def umap_map(vectors: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2-D UMAP of ``vectors`` (n, dim) by cosine -> points (n, 2): words near each other in
    the vectors stay near on the map (PCA keeps only the two widest directions)."""
    import umap

    n_neighbors = max(2, min(15, len(vectors) - 1))
    with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": wanted
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=n_neighbors,
                            random_state=seed, init="spectral" if len(vectors) > 3 else "random")
        return np.asarray(reducer.fit_transform(vectors.astype(np.float32)), dtype=np.float64)


def has_umap() -> bool:
    """Whether umap-learn is installed (the map then defaults to UMAP)."""
    return importlib.util.find_spec("umap") is not None


#: Maps already made, per (model, words, method): UMAP takes seconds, and the page asks again.
_MAPS_KEPT = 16


def _add_explorer(app: FastAPI) -> None:
    server: Server = app.state.server
    made: dict[tuple[str, int, str], dict[str, Any]] = {}

    @app.get("/v1/models/{name}/map", tags=["models"], response_model=None,
             responses={200: {"model": MapResponse}})
    async def word_map_route(
        name: str, n: int = Query(300, ge=2, le=5000),
        method: Literal["auto", "pca", "umap"] = Query(
            "auto", description="pca, umap (needs umap-learn), or auto: UMAP where installed"),
    ) -> JSONResponse:
        """The ``n`` most frequent words of a word-vectors model laid out in 2-D (PCA of their
        unit vectors, or UMAP by cosine), for the explorer page's map."""
        kv = server.model(name, "neighbors").vectors
        assert kv is not None
        n = min(n, len(kv))
        if method == "auto":
            method = "umap" if has_umap() else "pca"
        elif method == "umap" and not has_umap():
            raise ApiError(422, "method=umap needs umap-learn (pip install umap-learn); "
                                "or ask for method=pca", field="method")
        key = (name, n, method)
        if key not in made:
            body: dict[str, Any] = {"model": name, "method": method, "words": list(kv.words[:n])}
            if method == "umap":
                points, explained = await asyncio.to_thread(umap_map, kv.vectors[:n]), None
            else:
                points, shares = await asyncio.to_thread(word_map, kv.vectors[:n])
                explained = shares.tolist()
            body.update(points=np.round(points, 5).tolist(), explained=explained)
            if len(made) >= _MAPS_KEPT:
                made.pop(next(iter(made)))
            made[key] = body
        return JSONResponse(made[key])

    @app.get("/", include_in_schema=False)
    async def explorer() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _offline_docs_files() -> Path | None:
    """Swagger UI's and ReDoc's files from the ``fastapi-offline`` package (a dependency of
    ``warmstart[serve]``), so that /docs works with no network; None without it (FastAPI's
    own pages then load them from a CDN)."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def _add_docs(app: FastAPI, files: Path) -> None:
    """/docs (Swagger UI) and /redoc, their scripts served here instead of from a CDN."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    app.mount(DOCS_STATIC, StaticFiles(directory=files), name="docs-static")
    schema = str(app.openapi_url)

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + schema, title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=root + schema, title=f"{app.title} - API",
                              redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
                              with_google_fonts=False)


# -- the guard -------------------------------------------------------------------------------


class Guard:
    """ASGI middleware around the app: the API key, the body size limit, request metrics.

    The body is read here, up to ``max_body`` bytes (a larger one is refused with 413 before
    the rest of it is read), and handed on whole; so no route ever holds more than that.
    """

    def __init__(self, app: FastAPI, server: Server, *, api_key: str = "") -> None:
        self.app = app
        self.server = server
        self.api_key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        metrics = self.server.metrics
        route = self._route(scope)
        start, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        key = (("route", route),)
        metrics.in_flight[key] += 1
        try:
            if self.api_key and not _open(scope["path"]) and not self._authorized(scope):
                await _send_json(sending, 401, "a valid API key is needed: send the header "
                                 "'Authorization: Bearer KEY'", "authorization",
                                 {"WWW-Authenticate": "Bearer"})
                return
            bounded = await self._bounded(scope, receive, sending)
            if bounded is not None:
                await self.app(scope, bounded, sending)
        finally:
            metrics.in_flight[key] -= 1
            metrics.request(route, scope["method"], status[0], time.perf_counter() - start)

    def _route(self, scope: Scope) -> str:
        for r in self.app.router.routes:
            match, _ = r.matches(scope)
            if match is Match.FULL:
                return str(getattr(r, "path", "?"))
        return "unmatched"

    def _authorized(self, scope: Scope) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, b"Bearer " + self.api_key)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """``receive`` replaying the whole body, or None once a 413 (or nothing, for a
        client that went away) has been sent."""
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return receive
        limit = self.server.config.max_body
        too_large = f"the body is larger than {limit:,} bytes (--max-body); send fewer texts"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _send_json(send, 413, too_large, "body")
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_json(send, 413, too_large, "body")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # what comes next: a disconnect

        return replay


def _open(path: str) -> bool:
    return path in OPEN_ROUTES or path.startswith(OPEN_PREFIXES)


async def _send_json(send: Send, status: int, message: str, field: str | None,
                     headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(error_body(status, message, field)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def torch_threads(config: ServeConfig) -> int:
    """Torch threads per worker: --threads, or the usable cores shared among the workers."""
    if config.threads:
        return config.threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // config.workers)
