"""The server's settings: one dataclass, the names of ``warmstart serve``'s options."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from warmstart.config import PRECISIONS, opt
from warmstart.errors import WarmstartError

#: Where the API key may also come from (so it stays out of ``ps`` and shell history).
API_KEY_ENV = "WARMSTART_API_KEY"
#: What runs encoders and encoder classifiers: ``auto`` runs each folder as it is (an ONNX
#: export with onnxruntime, the rest with torch).
RUNTIMES = ("auto", "torch", "onnx")


@dataclass
class ServeConfig:
    """How ``warmstart serve`` listens, what it accepts, and how it batches."""

    host: str = opt("127.0.0.1", "address to listen on (0.0.0.0: every interface; mind --api-key)")
    port: int = opt(8000, "port to listen on", at_least=1, at_most=65535)
    api_key: str = opt("", f"require 'Authorization: Bearer KEY' on every route but /health "
                           f"(or set {API_KEY_ENV})")
    workers: int = opt(1, "processes, each loading every model (a load balancer's worth)",
                       at_least=1, at_most=256)
    threads: int = opt(0, "torch threads per worker (0: the CPU cores / --workers)", at_least=0)
    precision: str = opt("auto", "an encoder's forward pass in bf16 (auto: where the hardware has it)")
    device: str = opt("auto", "where torch models run: auto (a GPU if there is one), cpu, cuda")
    compile: bool = opt(False, "compile torch encoders with torch.compile at start (a C++ "
                               "compiler at run time, about 20 s a model; eager where compiling "
                               "fails); a forward pass alone 8-11% faster on 2 CPU cores, no "
                               "gain measured under load there")
    runtime: str = opt("auto", "what runs encoders and classifiers: onnx (onnxruntime; a torch "
                               "folder is exported to ONNX at start), torch, or auto (each "
                               "folder as it is: an ONNX export with onnxruntime)")
    max_texts: int = opt(256, "texts in one request, at most", at_least=1)
    max_chars: int = opt(20_000, "characters read of a text; longer texts are cut (and the "
                                 "response says so)", at_least=1)
    max_body: int = opt(8_000_000, "bytes in a request body, at most", at_least=1024)
    max_batch: int = opt(64, "texts of concurrent requests merged into one batch, at most",
                         at_least=1)
    batch_size: int = opt(16, "texts per forward pass: a merged batch is sorted by length and run "
                              "this many at a time (less padding; a GPU likes more)", at_least=1)
    max_wait_ms: float = opt(2.0, "how long a forward pass waits for more requests to join "
                                  "it, in milliseconds", at_least=0, at_most=10_000)
    max_queue: int = opt(4096, "texts waiting for a model before requests get 503", at_least=1)
    keep_alive: float = opt(75.0, "seconds an idle connection stays open (above a load "
                                  "balancer's idle timeout, 60 s for most)", at_least=1)
    shutdown_timeout: float = opt(30.0, "seconds SIGTERM waits for requests in flight",
                                  at_least=0)
    access_log: bool = opt(False, "log every request")

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise WarmstartError(f"--precision {self.precision}: use one of {', '.join(PRECISIONS)}")
        if self.runtime not in RUNTIMES:
            raise WarmstartError(f"--runtime {self.runtime}: use one of {', '.join(RUNTIMES)}")
        if self.max_texts > self.max_queue:
            raise WarmstartError(f"--max-texts {self.max_texts} is above --max-queue "
                                 f"{self.max_queue}: such a request could never be queued")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
