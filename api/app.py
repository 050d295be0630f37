"""`seal serve`: the HTTP API over a home, with live version swaps. `create_app` wires its parts:
  api/completions.py  the OpenAI-compatible surface (models, chat completions, completions, LoRA loading)
  api/admin.py        documents queued for `seal run`, their jobs, knowledge versions and activation
  api/batcher.py      the one decoding thread, batching concurrent greedy requests
A commit or a rollback made by any process is served from the next request on, without a restart. One
model serves every request; everything but decoding answers at once. Errors are JSON in OpenAI's shape
(`api/errors.py`)."""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.workspace import Workspace
from api import admin, completions
from api.errors import ApiError, error_response

MAX_BODY_BYTES = 1_000_000


class Guard:
    """Refuses a request without the API key, or with a body this server will not read, before any route
    runs. Plain ASGI, so streamed replies and a client's disconnect pass through untouched."""

    def __init__(self, app: ASGIApp, api_key: str | None):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.refusal(Headers(scope=scope)) if scope["type"] == "http" else None
        await (refusal or self.app)(scope, receive, send)

    def refusal(self, headers: Headers) -> JSONResponse | None:
        given = headers.get("authorization", "").encode()
        # Compared in constant time, so the response time does not tell how much of a guessed key was right.
        if self.api_key is not None and not hmac.compare_digest(given, f"Bearer {self.api_key}".encode()):
            return error_response(401, "missing or wrong API key: send `Authorization: Bearer KEY`",
                                  code="invalid_api_key")
        length = headers.get("content-length")
        if length is None and "chunked" in headers.get("transfer-encoding", ""):
            return error_response(411, "send the body with a Content-Length (chunked bodies are not accepted)")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return error_response(413, f"request body over {MAX_BODY_BYTES:,} bytes", code="body_too_large")
        return None


async def api_error(_: Request, e: ApiError) -> JSONResponse:
    return error_response(e.status, e.message, e.type, e.code, e.param)


async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
    first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return error_response(400, f"{where or 'body'}: {first.get('msg', 'invalid')}", param=where or None)


async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
    return error_response(e.status_code, str(e.detail),
                          "invalid_request_error" if e.status_code < 500 else "server_error")


async def unexpected(_: Request, e: Exception) -> JSONResponse:
    # Only shapes the 500 for OpenAI clients: Starlette's ServerErrorMiddleware re-raises the exception after
    # this handler, so uvicorn still logs the traceback.
    return error_response(500, f"internal error: {type(e).__name__}: {e}", "server_error")


def create_app(ws: Workspace, api_key: str | None = None, max_tokens_limit: int = 1024) -> FastAPI:
    """The API over `ws`: requests need `Authorization: Bearer API_KEY` when one is given, and may ask for at
    most `max_tokens_limit` tokens."""
    app = FastAPI(title="seal", version="1", docs_url=None, redoc_url=None)
    app.state.ws = ws
    app.state.serving = completions.Serving(ws, max_tokens_limit)
    app.add_middleware(Guard, api_key=api_key)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
    app.include_router(completions.router)
    app.include_router(admin.router)
    return app
