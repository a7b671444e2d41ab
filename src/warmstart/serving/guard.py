"""The ASGI middleware in front of the routes: the API key, the body size limit and the
request metrics."""

from __future__ import annotations

import hmac
import json
import time

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from warmstart.serving.errors import error_body
from warmstart.serving.server import Server

#: Routes that answer without the API key: a load balancer's health check has none, and the
#: explorer page is where a user pastes the key (the page itself holds no data).
OPEN_ROUTES = ("/health", "/")
OPEN_PREFIXES = ("/static/", "/docs-static/")


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
