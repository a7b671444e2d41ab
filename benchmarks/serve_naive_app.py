"""The naive anchor of ``serve_load.py``: sentence-transformers ``encode`` per request.

    NAIVE_MODEL=FOLDER NAIVE_THREADS=2 NAIVE_PRECISION=fp32 \\
        uvicorn serve_naive_app:app --app-dir benchmarks --host 127.0.0.1 --port 8001

What an embedding endpoint looks like when written in a few lines: a FastAPI app whose sync
``def`` route (run in FastAPI's thread pool) calls ``SentenceTransformer.encode`` on the texts
of each request, with no batching across requests, and returns the vectors as JSON. Routes:
``GET /health`` and ``POST /embed`` with ``{"texts": [...]}``. Settings (environment):

* ``NAIVE_MODEL``: the sentence-transformers folder (loaded offline, on the CPU);
* ``NAIVE_THREADS``: torch threads (0: torch's default);
* ``NAIVE_PRECISION``: ``fp32``; ``bf16-autocast`` (the forward pass under
  ``torch.autocast("cpu", torch.bfloat16)``, as warmstart runs it); or ``bf16`` (the weights
  cast to bfloat16).
"""

from __future__ import annotations

import contextlib
import os

import torch
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

PRECISIONS = ("fp32", "bf16-autocast", "bf16")

MODEL = os.environ["NAIVE_MODEL"]
THREADS = int(os.environ.get("NAIVE_THREADS", "0"))
PRECISION = os.environ.get("NAIVE_PRECISION", "fp32")
if PRECISION not in PRECISIONS:
    raise SystemExit(f"NAIVE_PRECISION={PRECISION}: use one of {', '.join(PRECISIONS)}")

if THREADS:
    torch.set_num_threads(THREADS)
model = SentenceTransformer(MODEL, device="cpu")
if PRECISION == "bf16":
    model.to(torch.bfloat16)
model.eval()
model.encode(["warm up"])


class EmbedRequest(BaseModel):
    texts: list[str]


app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "precision": PRECISION, "threads": str(torch.get_num_threads())}


@app.post("/embed")
def embed(request: EmbedRequest) -> JSONResponse:
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if PRECISION == "bf16-autocast"
                else contextlib.nullcontext())
    with autocast:
        vectors = model.encode(request.texts, convert_to_tensor=True)
    # JSONResponse directly: FastAPI's jsonable_encoder would walk every float.
    return JSONResponse({"embeddings": vectors.float().cpu().numpy().tolist()})
