"""The OpenAI-compatible surface: `GET /v1/models`, `POST /v1/chat/completions` and `/v1/completions`
(whole or streamed as server-sent events), and vLLM's `/v1/load_lora_adapter` and `/v1/unload_lora_adapter`,
so `seal serve` can be another runtime's generation server.

`seal` is the active knowledge version, looked up on every request; `seal@vN` pins a version. A request
resolves its version once, at its start, and finishes on it. Decoding runs on one thread that batches
concurrent greedy requests (`api/batcher.py`)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from safetensors import SafetensorError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from adapters_store import parse_version
from agent.answer import cited, prepared
from agent.workspace import Workspace
from api.batcher import Batcher, Busy, DecodeRequest
from api.errors import ApiError
from memory import Hit
from seal.errors import NotFoundError, SealError

MODEL = "seal"


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


class Serving:
    """What the routes decode with: the home's workspace, the decoding thread, and the adapters loaded by name."""

    def __init__(self, ws: Workspace, max_tokens_limit: int):
        self.ws, self.max_tokens_limit = ws, max_tokens_limit
        self.generating = threading.Lock()  # held while decoding, and while adapters are loaded or unloaded
        self.batcher = Batcher(lambda: ws.engine, self.generating)
        self.loaded: dict[str, Path] = {}  # adapters loaded over /v1/load_lora_adapter (the remote-engine API)

    def target(self, model: str) -> tuple[str, int | None]:
        """(the model name a response carries, its knowledge version) for a request's `model`: `seal` is the
        active version, resolved now; `seal@vN` pins one; a loaded adapter's name has no version."""
        if model in self.loaded:
            return model, None
        if model == MODEL:
            number = self.ws.store.active("knowledge")
            return f"{MODEL}@v{number}", number
        name, sep, version = model.partition("@")
        if name == MODEL and sep:
            try:
                number = parse_version(version)
                if number and self.ws.store.version(number).pruned:
                    raise NotFoundError(f"v{number} was pruned")
                return f"{MODEL}@v{number}", number
            except SealError:
                pass
        raise ApiError(404, f"model {model!r} does not exist; GET /v1/models lists them", code="model_not_found",
                       param="model")

    def adapter(self, model: str, number: int | None) -> str | None:
        """The engine's adapter for a target (under the generation lock: attaching changes the model)."""
        if number is not None:
            return self.ws.attach("knowledge", number)
        internal, path = f"api-{model}", self.loaded.get(model)  # its own namespace: never taken for a version
        if path is None:
            raise NotFoundError(f"adapter {model!r} was unloaded")
        if internal not in self.ws.engine.adapters():
            self.ws.engine.load_adapter(internal, path)
        return internal

    def limit(self, requested: int | None, default: int) -> int:
        tokens = requested or default
        if tokens > self.max_tokens_limit:
            raise ApiError(400, f"max_tokens {tokens} is over this server's limit of {self.max_tokens_limit}",
                           param="max_tokens")
        return tokens

    def decode(self, prompt: str, model: str, number: int | None, body: Sampling, max_tokens: int,
               cancelled: threading.Event) -> Iterator[str]:
        """Decode on a target: queued for the decoding thread, which batches concurrent greedy requests, and
        stops decoding it once `cancelled` is set."""
        request = DecodeRequest(prompt, model, lambda: self.adapter(model, number), max_tokens, body.temperature,
                                body.top_p, body.seed, body.repetition_penalty, cancelled=cancelled)
        try:
            yield from self.batcher.submit(request)
        except Busy as e:
            raise ApiError(429, str(e), "rate_limit_error", code="busy") from None
        except NotFoundError as e:  # the version was pruned, or the adapter unloaded, since the request began
            raise ApiError(404, str(e), code="model_not_found", param="model") from None

    def usage(self, prompt: str, text: str) -> dict[str, int]:
        tokenizer = self.ws.engine.tokenizer
        p, c = len(tokenizer(prompt)["input_ids"]), len(tokenizer(text)["input_ids"])
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    async def respond(self, request: Request, kind: str, body: Sampling, to: tuple[str, int | None], prompt: str,
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
                self.ws.store.add_chat_turn(log, text.strip(), number)
            return "length" if self.usage(prompt, text)["completion_tokens"] >= max_tokens else "stop"

        if not body.stream:
            def whole() -> dict[str, Any]:
                text = "".join(self.decode(prompt, model, number, body, max_tokens, cancelled)).strip()
                choice = ({"index": 0, "message": {"role": "assistant", "content": text}} if chat
                          else {"index": 0, "text": text, "logprobs": None})
                return {"id": ident, "object": "chat.completion" if chat else "text_completion", "created": created,
                        "model": model, "choices": [{**choice, "finish_reason": finish(text)}],
                        "usage": self.usage(prompt, text), **found}

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
            for piece in self.decode(prompt, model, number, body, max_tokens, cancelled):
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


router = APIRouter()


def serving(request: Request) -> Serving:
    """The app's `Serving` (`create_app` keeps it in the app's state)."""
    return request.app.state.serving


Served = Annotated[Serving, Depends(serving)]


@router.get("/v1/models")
async def models(s: Served) -> dict[str, Any]:
    versions = [v for v in s.ws.store.versions("knowledge") if not v.pruned]
    ids = [MODEL, f"{MODEL}@v0", *(f"{MODEL}@v{v.number}" for v in versions)]
    return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "seal"} for i in ids]}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request, s: Served) -> Any:
    model, number = s.target(body.model)
    messages = [m.model_dump(exclude={"context"}) for m in body.messages]
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
    # The configured default applies where it can: a loaded adapter (or no user message) answers closed-book
    # unless a context is asked for explicitly, which is then an error.
    context = body.context or (s.ws.config.answer.context if number is not None and user is not None else "none")
    hits = None
    if context != "none":
        if number is None or user is None:
            raise ApiError(400, f"context {context!r} needs a `seal` model and a user message "
                                "(a loaded adapter answers closed-book only)", param="context")
        messages, number, hits = await run_in_threadpool(prepared, s.ws, messages, context, number)
        model = f"{MODEL}@v{number}"
    prompt = s.ws.engine.chat_prompt(messages)
    return await s.respond(request, "chatcmpl", body, (model, number), prompt, s.limit(body.max_tokens, 256),
                           user or "", hits)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request, s: Served) -> Any:
    return await s.respond(request, "cmpl", body, s.target(body.model), body.prompt, s.limit(body.max_tokens, 16), None)


@router.post("/v1/load_lora_adapter")
async def load_lora_adapter(body: LoadAdapter, s: Served) -> dict[str, Any]:
    """vLLM's runtime adapter loading, so `seal serve` can be another runtime's generation server. Only
    PEFT folders inside this server's home are read (safetensors only), and a name may not shadow `seal`."""
    if body.lora_name == MODEL or body.lora_name.startswith(f"{MODEL}@"):
        raise ApiError(400, f"lora_name {body.lora_name!r} is reserved for this server's versions", param="lora_name")
    if body.lora_name in s.loaded and not body.load_inplace:
        raise ApiError(400, f"adapter {body.lora_name!r} is already loaded; send load_inplace: true to replace it",
                       param="lora_name")
    directory = Path(body.lora_path).expanduser().resolve()
    if not directory.is_relative_to(s.ws.home.resolve()) or not directory.is_dir():
        raise ApiError(400, f"lora_path {body.lora_path!r} is not an adapter folder inside this server's home "
                            f"({s.ws.home})", param="lora_path")

    def load() -> None:
        with s.generating:
            s.ws.engine.load_adapter(f"api-{body.lora_name}", directory)
    try:
        await run_in_threadpool(load)
    except (SealError, OSError, ValueError, SafetensorError) as e:  # not a PEFT folder, another model, unreadable
        raise ApiError(400, f"cannot load {body.lora_path!r}: {str(e).splitlines()[0]}", param="lora_path") from None
    s.loaded[body.lora_name] = directory
    return {"object": "lora_adapter", "name": body.lora_name, "path": str(directory)}


@router.post("/v1/unload_lora_adapter")
async def unload_lora_adapter(body: UnloadAdapter, s: Served) -> dict[str, Any]:
    if s.loaded.pop(body.lora_name, None) is None:
        raise ApiError(404, f"no adapter {body.lora_name!r} is loaded", code="adapter_not_found", param="lora_name")

    def unload() -> None:
        with s.generating:
            s.ws.engine.delete_adapter(f"api-{body.lora_name}")
    await run_in_threadpool(unload)
    return {"object": "lora_adapter", "name": body.lora_name, "deleted": True}
