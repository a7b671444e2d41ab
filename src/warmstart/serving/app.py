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

The request and response bodies are in :mod:`.schemas`, the JSON errors in :mod:`.errors`,
the models, batchers and inference thread in :mod:`.server`, the API key and body limit in
:mod:`.guard`, the explorer page and its word map in :mod:`.explorer`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from warmstart.serving.config import ServeConfig
from warmstart.serving.errors import ApiError, add_error_handlers, check_text
from warmstart.serving.explorer import add_explorer
from warmstart.serving.guard import Guard
from warmstart.serving.models import ServedModel
from warmstart.serving.schemas import (
    AnalogyRequest,
    AnalogyResponse,
    ClassifyRequest,
    ClassifyResponse,
    EmbedRequest,
    EmbedResponse,
    NeighborsResponse,
)
from warmstart.serving.server import Server

#: Where the API docs pages (/docs, /redoc) find Swagger UI's and ReDoc's files.
DOCS_STATIC = "/docs-static"


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
    add_error_handlers(app)
    _add_routes(app, server)
    add_explorer(app)
    if offline:
        _add_docs(app, offline)
    return Guard(app, server, api_key=api_key)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("warmstart")
    except PackageNotFoundError:  # run from a source tree
        return "0+unknown"


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
