"""The explorer page (``GET /``) and the word map it draws (``GET /v1/models/{name}/map``):
the most frequent words of a word-vectors model laid out in 2-D by PCA, or by UMAP where
umap-learn is installed."""

from __future__ import annotations

import asyncio
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from warmstart.serving.errors import ApiError
from warmstart.serving.schemas import MapResponse
from warmstart.serving.server import Server

#: The explorer page's files (index.html, app.js, style.css).
STATIC_DIR = Path(__file__).parent / "static"


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


def add_explorer(app: FastAPI) -> None:
    """The map route, the page at ``/`` and its files under ``/static``."""
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
