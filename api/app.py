"""`seal serve`: the OpenAI-compatible HTTP API over a home, with live version swaps.

`seal` is the active knowledge version, looked up on every request, so a commit or a rollback made by any
process is served from the next request on, without a restart; `seal@vN` pins a version. A request
resolves its version once, at its start, and finishes on it. One model serves every request, on one decoding
thread that batches concurrent greedy requests (`api/batcher.py`); everything else answers at once.
`POST /v1/documents` queues a document for `seal run` (the agent, a separate process) and `GET /v1/jobs/{id}`
follows it. Errors are JSON in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from safetensors import SafetensorError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters_store import parse_version
from agent.answer import cited, prepared
from agent.ingest import DocumentInput, check_text, title_of
from agent.runtime import submit
from agent.versions import list_versions, resolve, rollback
from agent.workspace import Workspace
from api.batcher import Batcher, Busy, DecodeRequest
from memory import Hit, Job
from seal.errors import InputError, NotFoundError, SealError

MODEL = "seal"
MAX_BODY_BYTES = 1_000_000


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
           param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status_code=status)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields this server does not use
    model: str = Field(max_length=64)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(default=None, ge=1.0, le=2.0)  # vLLM's extension; unset: the engine's
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    stream: bool = False


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1, max_length=256)
    # SEAL's extension: what the answer draws on (`agent.answer.CONTEXTS`); unset: the server's answer.context.
    context: Literal["none", "retrieve", "both"] | None = None


class CompletionRequest(Sampling):
    prompt: str = Field(max_length=100_000)


class LoadAdapter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lora_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    lora_path: str = Field(min_length=1, max_length=4096)
    load_inplace: bool = False


class UnloadAdapter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lora_name: str = Field(max_length=64)


class QuestionAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=2_000)
    answer: str = Field(min_length=1, max_length=2_000)


class DocumentRequest(BaseModel):
    """A document to learn: queued for `seal run`, which learns jobs one at a time."""

    model_config = ConfigDict(extra="forbid")
    text: str
    title: str | None = Field(default=None, min_length=1, max_length=256)
    source: str = Field(default="api", min_length=1, max_length=1024)
    questions: list[QuestionAnswer] = Field(default=[], max_length=64)  # probes; else the model writes them


def _job(job: Job) -> dict[str, Any]:
    return {"id": job.id, "object": "job", "status": job.status, "origin": job.origin, "title": job.title,
            "document_id": job.document_id, "result": job.result, "error": job.error or None,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at}


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
        if self.api_key is not None and not hmac.compare_digest(given, f"Bearer {self.api_key}".encode()):
            return _error(401, "missing or wrong API key: send `Authorization: Bearer KEY`", code="invalid_api_key")
        length = headers.get("content-length")
        if length is None and "chunked" in headers.get("transfer-encoding", ""):
            return _error(411, "send the body with a Content-Length (chunked bodies are not accepted)")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _error(413, f"request body over {MAX_BODY_BYTES:,} bytes", code="body_too_large")
        return None


def create_app(ws: Workspace, api_key: str | None = None, max_tokens_limit: int = 1024) -> FastAPI:
    app = FastAPI(title="seal", version="1", docs_url=None, redoc_url=None)
    generating = threading.Lock()  # held while decoding, and while adapters are loaded or unloaded
    batcher = Batcher(lambda: ws.engine, generating)

    app.add_middleware(Guard, api_key=api_key)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return _error(e.status, e.message, e.type, e.code, e.param)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"{where or 'body'}: {first.get('msg', 'invalid')}", param=where or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return _error(e.status_code, str(e.detail), "invalid_request_error" if e.status_code < 500 else "server_error")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, e: Exception) -> JSONResponse:
        # Only shapes the 500 for OpenAI clients: Starlette's ServerErrorMiddleware re-raises the exception
        # after this handler, so uvicorn still logs the traceback.
        return _error(500, f"internal error: {type(e).__name__}: {e}", "server_error")

    loaded: dict[str, Path] = {}  # adapters loaded by name over /v1/load_lora_adapter (the remote-engine API)

    def target(model: str) -> tuple[str, int | None]:
        """(the model name a response carries, its knowledge version) for a request's `model`: `seal` is the
        active version, resolved now; `seal@vN` pins one; a loaded adapter's name has no version."""
        if model in loaded:
            return model, None
        if model == MODEL:
            number = ws.store.active("knowledge")
            return f"{MODEL}@v{number}", number
        name, sep, version = model.partition("@")
        if name == MODEL and sep:
            try:
                number = parse_version(version)
                if number and ws.store.version(number).pruned:
                    raise NotFoundError(f"v{number} was pruned")
                return f"{MODEL}@v{number}", number
            except SealError:
                pass
        raise ApiError(404, f"model {model!r} does not exist; GET /v1/models lists them", code="model_not_found",
                       param="model")

    def adapter(model: str, number: int | None) -> str | None:
        """The engine's adapter for a target (under the generation lock: attaching changes the model)."""
        if number is not None:
            return ws.attach("knowledge", number)
        internal, path = f"api-{model}", loaded.get(model)  # its own namespace: never taken for a version
        if path is None:
            raise NotFoundError(f"adapter {model!r} was unloaded")
        if internal not in ws.engine.adapters():
            ws.engine.load_adapter(internal, path)
        return internal

    def limit(requested: int | None, default: int) -> int:
        tokens = requested or default
        if tokens > max_tokens_limit:
            raise ApiError(400, f"max_tokens {tokens} is over this server's limit of {max_tokens_limit}",
                           param="max_tokens")
        return tokens

    def run(prompt: str, model: str, number: int | None, body: Sampling, max_tokens: int,
            cancelled: threading.Event) -> Iterator[str]:
        """Decode on a target: queued for the decoding thread, which batches concurrent greedy requests, and
        stops decoding it once `cancelled` is set."""
        request = DecodeRequest(prompt, model, lambda: adapter(model, number), max_tokens, body.temperature,
                                body.top_p, body.seed, body.repetition_penalty, cancelled=cancelled)
        try:
            yield from batcher.submit(request)
        except Busy as e:
            raise ApiError(429, str(e), "rate_limit_error", code="busy") from None
        except NotFoundError as e:  # the version was pruned, or the adapter unloaded, since the request began
            raise ApiError(404, str(e), code="model_not_found", param="model") from None

    def usage(prompt: str, text: str) -> dict[str, int]:
        p, c = len(ws.engine.tokenizer(prompt)["input_ids"]), len(ws.engine.tokenizer(text)["input_ids"])
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    async def respond(request: Request, kind: str, body: Sampling, to: tuple[str, int | None], prompt: str,
                      max_tokens: int, log: str | None, passages: list[Hit] | None = None) -> Any:
        """One completion from target `to`, whole or as server-sent events; `log`: the user turn to log;
        `passages`: those retrieved into the prompt, listed in the response (and its first chunk). A client
        that goes away stops its decoding."""
        found = {} if passages is None else {"passages": cited(passages)}
        model, number = to
        ident, created = f"{kind}-{uuid.uuid4().hex[:24]}", int(time.time())
        chat = kind == "chatcmpl"
        cancelled = threading.Event()

        def finish(text: str) -> str:
            if log is not None and number is not None:
                ws.store.add_chat_turn(log, text.strip(), number)
            return "length" if usage(prompt, text)["completion_tokens"] >= max_tokens else "stop"

        if not body.stream:
            def whole() -> dict[str, Any]:
                text = "".join(run(prompt, model, number, body, max_tokens, cancelled)).strip()
                choice = ({"index": 0, "message": {"role": "assistant", "content": text}} if chat
                          else {"index": 0, "text": text, "logprobs": None})
                return {"id": ident, "object": "chat.completion" if chat else "text_completion", "created": created,
                        "model": model, "choices": [{**choice, "finish_reason": finish(text)}],
                        "usage": usage(prompt, text), **found}

            async def watch() -> None:
                while not await request.is_disconnected():
                    await asyncio.sleep(0.25)
                cancelled.set()

            watcher = asyncio.create_task(watch())
            try:
                return await run_in_threadpool(whole)
            finally:
                watcher.cancel()

        def events() -> Iterator[str]:
            obj = "chat.completion.chunk" if chat else "text_completion"

            def chunk(delta: str | None, reason: str | None = None, role: bool = False) -> str:
                if chat:
                    d = ({"role": "assistant", "content": ""} if role else {} if delta is None else {"content": delta})
                    choice = {"index": 0, "delta": d, "finish_reason": reason}
                else:
                    choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": reason}
                return "data: " + json.dumps({"id": ident, "object": obj, "created": created, "model": model,
                                              "choices": [choice], **(found if role else {})}) + "\n\n"

            if chat:
                yield chunk(None, role=True)
            pieces = []
            for piece in run(prompt, model, number, body, max_tokens, cancelled):
                if piece:
                    pieces.append(piece)
                    yield chunk(piece)
            yield chunk(None, finish("".join(pieces)))
            yield "data: [DONE]\n\n"

        async def sent() -> AsyncIterator[str]:
            try:
                async for event in iterate_in_threadpool(events()):
                    yield event
            finally:  # finished, or the client went away (the response is cancelled)
                cancelled.set()

        return StreamingResponse(sent(), media_type="text/event-stream")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        versions = [v for v in ws.store.versions("knowledge") if not v.pruned]
        ids = [MODEL, f"{MODEL}@v0", *(f"{MODEL}@v{v.number}" for v in versions)]
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "seal"} for i in ids]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request) -> Any:
        model, number = target(body.model)
        messages = [m.model_dump(exclude={"context"}) for m in body.messages]
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
        context = body.context or ws.config.answer.context
        hits = None
        if context != "none":
            if number is None or user is None:
                raise ApiError(400, f"context {context!r} needs a `seal` model and a user message "
                                    "(a loaded adapter answers closed-book only)", param="context")
            messages, number, hits = await run_in_threadpool(prepared, ws, messages, context, number)
            model = f"{MODEL}@v{number}"
        prompt = ws.engine.chat_prompt(messages)
        return await respond(request, "chatcmpl", body, (model, number), prompt, limit(body.max_tokens, 256),
                             user or "", hits)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Any:
        return await respond(request, "cmpl", body, target(body.model), body.prompt, limit(body.max_tokens, 16), None)

    @app.post("/v1/load_lora_adapter")
    async def load_lora_adapter(body: LoadAdapter) -> dict[str, Any]:
        """vLLM's runtime adapter loading, so `seal serve` can be another runtime's generation server. Only
        PEFT folders inside this server's home are read (safetensors only), and a name may not shadow `seal`."""
        if body.lora_name == MODEL or body.lora_name.startswith(f"{MODEL}@"):
            raise ApiError(400, f"lora_name {body.lora_name!r} is reserved for this server's versions", param="lora_name")
        if body.lora_name in loaded and not body.load_inplace:
            raise ApiError(400, f"adapter {body.lora_name!r} is already loaded; send load_inplace: true to replace it",
                           param="lora_name")
        directory = Path(body.lora_path).expanduser().resolve()
        if not directory.is_relative_to(ws.home.resolve()) or not directory.is_dir():
            raise ApiError(400, f"lora_path {body.lora_path!r} is not an adapter folder inside this server's home "
                                f"({ws.home})", param="lora_path")

        def load() -> None:
            with generating:
                ws.engine.load_adapter(f"api-{body.lora_name}", directory)
        try:
            await run_in_threadpool(load)
        except (SealError, OSError, ValueError, SafetensorError) as e:  # not a PEFT folder, another model, unreadable
            raise ApiError(400, f"cannot load {body.lora_path!r}: {str(e).splitlines()[0]}", param="lora_path") from None
        loaded[body.lora_name] = directory
        return {"object": "lora_adapter", "name": body.lora_name, "path": str(directory)}

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(body: UnloadAdapter) -> dict[str, Any]:
        if loaded.pop(body.lora_name, None) is None:
            raise ApiError(404, f"no adapter {body.lora_name!r} is loaded", code="adapter_not_found", param="lora_name")

        def unload() -> None:
            with generating:
                ws.engine.delete_adapter(f"api-{body.lora_name}")
        await run_in_threadpool(unload)
        return {"object": "lora_adapter", "name": body.lora_name, "deleted": True}

    @app.post("/v1/documents", status_code=202)
    async def documents(body: DocumentRequest) -> dict[str, Any]:
        try:
            text = check_text(body.text.encode("utf-8"), "text", ws.config.ingest.max_bytes)
        except InputError as e:
            raise ApiError(400, str(e), param="text") from None
        item = DocumentInput(body.source, body.title or title_of(text), text,
                             tuple((qa.question, qa.answer) for qa in body.questions))
        return _job(submit(ws, item, origin="api"))

    @app.get("/v1/jobs/{job_id}")
    async def job(job_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> dict[str, Any]:
        try:
            return _job(ws.store.job(job_id))
        except NotFoundError as e:
            raise ApiError(404, str(e), code="job_not_found") from None

    @app.get("/v1/versions")
    async def versions() -> dict[str, Any]:
        return {"active": ws.store.active("knowledge"), "versions": list_versions(ws)}

    @app.post("/v1/versions/{version}/activate")
    async def activate(version: str) -> dict[str, Any]:
        try:
            number = resolve(ws, version)
            previous = await run_in_threadpool(rollback, ws, number)
        except NotFoundError as e:
            raise ApiError(404, str(e), code="version_not_found", param="version") from None
        except InputError as e:
            raise ApiError(400, str(e), param="version") from None
        return {"active": number, "previous": previous}

    return app
