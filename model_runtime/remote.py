"""`RemoteEngine`: generation on an OpenAI-compatible server that loads LoRA adapters at runtime — vLLM
(started with `--enable-lora` and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`) or a `seal serve` on the same home.

It answers the same calls as `LanguageModel` does for generation (`generate`, `stream`, `load_adapter`,
`delete_adapter`, `adapters`, `chat_prompt`), so the agent's stages use either. Prompts are rendered here by
the local tokenizer's chat template and sent as plain completions, so both engines see the same tokens; an
adapter is loaded on the server by path (`POST /v1/load_lora_adapter`, replacing one of the same name) and
then addressed as the request's `model`. Training stays local: the server only needs to read the adapter
folders (a shared filesystem when it runs on another machine)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from transformers import PreTrainedTokenizerBase

from seal.errors import SealError


class RemoteEngine:
    """Generation requests to `url` (e.g. http://127.0.0.1:8001); `model` is the base model's name there."""

    def __init__(self, url: str, model: str, tokenizer: PreTrainedTokenizerBase, stop_ids: list[int],
                 api_key: str = "", timeout: float = 600.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url, self.model, self.tokenizer, self.stop_ids = url.rstrip("/"), model, tokenizer, stop_ids
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._loaded: set[str] = set()

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = self.client.post(path, json=body)
        except httpx.HTTPError as e:
            raise SealError(f"generation server {self.url}: {e}; is it running? (remote.url in the config)") from e
        if response.status_code >= 400:
            raise SealError(f"generation server {self.url}{path} answered {response.status_code}: "
                            f"{response.text[:300]}")
        return response

    # ---- adapters -------------------------------------------------------------------------------

    def adapters(self) -> list[str]:
        """Adapters this process loaded on the server."""
        return sorted(self._loaded)

    def load_adapter(self, name: str, directory: Path) -> None:
        self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(Path(directory).resolve()),
                                             "load_inplace": True})
        self._loaded.add(name)

    def delete_adapter(self, name: str) -> None:
        if name in self._loaded:
            self._post("/v1/unload_lora_adapter", {"lora_name": name})
            self._loaded.discard(name)

    # ---- text -----------------------------------------------------------------------------------

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _body(self, prompt: str, adapter: str | None, max_new_tokens: int, temperature: float, top_p: float,
              repetition_penalty: float, seed: int, stream: bool = False) -> dict[str, Any]:
        return {"model": adapter or self.model, "prompt": prompt, "max_tokens": max_new_tokens,
                "temperature": temperature, "top_p": top_p, "repetition_penalty": repetition_penalty,
                "seed": seed, "stop_token_ids": self.stop_ids, "skip_special_tokens": True, "stream": stream,
                "add_special_tokens": False}  # the prompt is already templated, as it is for local decoding

    def generate(self, prompts: list[str], *, adapter: str | None | list[str | None] = None, max_new_tokens: int = 64,
                 temperature: float = 0.0, top_p: float = 1.0, repetition_penalty: float = 1.0,
                 seed: int = 0, batch_size: int = 32) -> list[str]:
        """Complete each prompt; one request per prompt (prompt i samples with seed + i), up to `batch_size`
        in flight, which the server batches. `adapter`: one for all prompts, or one per prompt."""
        names = adapter if isinstance(adapter, list) else [adapter] * len(prompts)

        def complete(i: int) -> str:
            body = self._body(prompts[i], names[i], max_new_tokens, temperature, top_p, repetition_penalty, seed + i)
            return self._post("/v1/completions", body).json()["choices"][0]["text"].strip()

        with ThreadPoolExecutor(max_workers=max(1, min(batch_size, len(prompts)))) as pool:
            return list(pool.map(complete, range(len(prompts))))

    def stream(self, prompt: str, *, adapter: str | None = None, max_new_tokens: int = 256,
               temperature: float = 0.0, top_p: float = 1.0, repetition_penalty: float = 1.1,
               seed: int = 0, stop: Callable[[], bool] | None = None) -> Iterator[str]:
        """Yield the completion piece by piece (server-sent events); once `stop()` is true the stream is
        closed, which ends the server's decoding too."""
        body = self._body(prompt, adapter, max_new_tokens, temperature, top_p, repetition_penalty, seed, stream=True)
        try:
            with self.client.stream("POST", "/v1/completions", json=body) as response:
                if response.status_code >= 400:
                    raise SealError(f"generation server {self.url} answered {response.status_code}: "
                                    f"{response.read().decode(errors='replace')[:300]}")
                for line in response.iter_lines():
                    if stop is not None and stop():
                        return
                    if line.startswith("data: ") and line != "data: [DONE]":
                        yield json.loads(line[6:])["choices"][0]["text"]
        except httpx.HTTPError as e:
            raise SealError(f"generation server {self.url}: {e}; is it running? (remote.url in the config)") from e
