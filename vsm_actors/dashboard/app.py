"""The dashboard's Starlette app: one page (HTML, one script, one stylesheet, served from the
package) and the JSON endpoints it polls. Every endpoint only reads (`source.LedgerSource`).

    GET /                                  the page
    GET /api/tree                          the champion's tree with live node figures
    GET /api/directives?q=&status=&limit=&offset=
                                           directives, newest first, searched by text and status
    GET /api/directives/{id}/timeline      one directive's tasks per node (id: any unique part)
    GET /api/trials                        trial records, most recently updated first
    GET /api/trials/{id}                   one trial: gene, genome diff, objectives
    GET /api/fitness, /api/plot/{kind}     a `vsm ledger plot` series (fitness, throughput, ...)

Only GET, only on a loopback Host header (a page elsewhere cannot read the ledger through a
DNS name rebound to 127.0.0.1), and the page may load nothing but what this app serves (the
Content-Security-Policy header).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..ledger import LedgerError
from .source import LedgerSource, NotFound

STATIC = resources.files(__package__) / "static"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
MAX_LIMIT = 1000
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class JSON(Response):
    """orjson: several times faster than the standard encoder on the tree and directive pages."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class SecurityHeaders:
    """A plain ASGI middleware adding the headers above to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if api:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def _error(status: int, message: str) -> JSON:
    return JSON({"error": message}, status_code=status)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def create_app(source: LedgerSource, *, allowed_hosts: list[str] | None = None) -> Starlette:
    """The app over `source`. `allowed_hosts`: Host header values to answer (default: loopback
    names only)."""

    def answer(compute) -> JSON:
        try:
            return JSON(compute())
        except NotFound as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        except LedgerError as exc:
            return _error(503, f"{source.location}: {exc}")

    # plain functions: Starlette runs them on its worker threads, off the event loop
    def tree(request: Request) -> JSON:
        return answer(source.tree)

    def directives(request: Request) -> JSON:
        def compute():
            return source.directives(q=request.query_params.get("q", ""),
                                     status=request.query_params.get("status", ""),
                                     limit=_int(request, "limit", 100, 1, MAX_LIMIT),
                                     offset=_int(request, "offset", 0, 0, 10**12))
        return answer(compute)

    def timeline(request: Request) -> JSON:
        return answer(lambda: source.timeline(request.path_params["directive_id"]))

    def trials(request: Request) -> JSON:
        return answer(source.trials)

    def trial(request: Request) -> JSON:
        return answer(lambda: source.trial(request.path_params["trial_id"]))

    def plot(request: Request) -> JSON:
        def compute():
            text = request.query_params.get("bucket", "1")
            try:
                bucket = float(text)
            except ValueError:
                raise ValueError(f"bucket must be a number of seconds, got {text!r}") from None
            if not 0.001 <= bucket <= 86400:
                raise ValueError("bucket must be between 0.001 and 86400 seconds")
            return source.plot(request.path_params.get("kind", "fitness"), bucket)
        return answer(compute)

    def page(request: Request) -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/tree", tree, methods=["GET"]),
        Route("/api/directives", directives, methods=["GET"]),
        Route("/api/directives/{directive_id:path}/timeline", timeline, methods=["GET"]),
        Route("/api/trials", trials, methods=["GET"]),
        Route("/api/trials/{trial_id:path}", trial, methods=["GET"]),
        Route("/api/fitness", plot, methods=["GET"]),
        Route("/api/plot/{kind}", plot, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(routes=routes, middleware=[
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_HOSTS),
        Middleware(SecurityHeaders)])
