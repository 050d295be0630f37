"""`LanguageModel`: one loaded base model with named LoRA adapters on it; batched generation with
left padding (or a shared prefix computed once), sampling, stop on end-of-turn and a repetition guard;
token streaming for chat."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from jinja2 import TemplateError
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import (
    DynamicCache,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)
from transformers.generation.streamers import BaseStreamer

from seal.errors import IntegrityError

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
# Below this many tokens in common, a batch is left-padded: the prefix pass saves less than it costs.
MIN_SHARED_PREFIX = 8


def stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every token that ends a turn: end-of-text of the tokenizer, of the model config and of its generation
    config (each an id or a list of ids: Llama 3 lists three), and the token the chat template closes an
    assistant turn with (<|im_end|>, <|eot_id|>, <end_of_turn>, <|end|>)."""
    generation = getattr(model, "generation_config", None)
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, model.config.eos_token_id, getattr(generation, "eos_token_id", None)):
        ids.update(value if isinstance(value, (list, tuple)) else [value])
    if tokenizer.chat_template:
        marker = "\u2063seal-end-of-answer\u2063"
        chat = tokenizer.apply_chat_template([{"role": "user", "content": "?"}, {"role": "assistant", "content": marker}],
                                             tokenize=False)
        after = tokenizer(chat.split(marker, 1)[-1].lstrip(), add_special_tokens=False)["input_ids"]
        if after and after[0] in tokenizer.all_special_ids + list(tokenizer.added_tokens_decoder):
            ids.add(after[0])
    return sorted(i for i in ids if isinstance(i, int))


class LanguageModel:
    """A base model loaded once per process; adapters are attached, switched and removed by name."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str = "model"):
        self.base = model
        self.name = name
        self.tokenizer = tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = stop_ids(model, tokenizer)
        self.device = model.device  # the base model's device: every input is put there
        self.peft: PeftModel | None = None
        self._lock = threading.RLock()

    @property
    def module(self) -> torch.nn.Module:
        return self.peft if self.peft is not None else self.base

    # ---- adapters -------------------------------------------------------------------------------

    def adapters(self) -> list[str]:
        return [] if self.peft is None else list(self.peft.peft_config)

    def add_adapter(self, name: str, config: LoraConfig) -> None:
        """Attach a fresh LoRA adapter (B = 0, so it starts as the identity update)."""
        if self.peft is None:
            self.peft = get_peft_model(self.base, config, adapter_name=name)
        else:
            self.peft.add_adapter(name, config)
        self.peft.eval()

    def load_adapter(self, name: str, directory: Path) -> None:
        """Attach an adapter from a PEFT directory (safetensors only); replaces one of the same name."""
        config = LoraConfig.from_pretrained(str(directory))
        config.inference_mode = False
        weights = load_file(str(Path(directory) / ADAPTER_WEIGHTS))  # read first: a bad file attaches nothing
        if name in self.adapters():
            self.delete_adapter(name)
        self.add_adapter(name, config)
        try:
            result = set_peft_model_state_dict(self.peft, weights, adapter_name=name)
            missing = [k for k in result.missing_keys if f".{name}." in k and "lora_" in k]
            problem = (f"unexpected {result.unexpected_keys[:2]}, missing {missing[:2]}"
                       if result.unexpected_keys or missing else "")
        except RuntimeError as e:  # tensor shapes of another base model
            problem = str(e).splitlines()[0]
        if problem:
            self.delete_adapter(name)
            raise IntegrityError(f"adapter {directory} does not fit the loaded model {self.name!r} ({problem}); "
                                 "was it trained on another base model?")

    def save_adapter(self, name: str, directory: Path) -> None:
        """Write adapter `name` in PEFT's own format: adapter_model.safetensors + adapter_config.json."""
        directory.mkdir(parents=True, exist_ok=True)
        state = get_peft_model_state_dict(self.peft, adapter_name=name)
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(directory / ADAPTER_WEIGHTS))
        self.peft.peft_config[name].save_pretrained(str(directory))

    def delete_adapter(self, name: str) -> None:
        """Remove an adapter; removing the last one restores the plain base model."""
        if name not in self.adapters():
            return
        if len(self.adapters()) == 1:
            self.base = self.peft.unload()
            self.peft = None
        else:
            # Activate another adapter first: PEFT warns when the active one is deleted.
            self.peft.set_adapter(next(a for a in self.adapters() if a != name))
            self.peft.delete_adapter(name)

    def merge(self, name: str) -> None:
        """Fold the only attached adapter into the base weights, for good. The runtime never does this
        (versions stay adapters); the continual benchmark's plain arm does, as the paper did."""
        if self.adapters() != [name]:
            raise ValueError(f"merge needs {name!r} to be the only adapter; attached: {self.adapters()}")
        self.base = self.peft.merge_and_unload()
        self.peft = None

    @contextmanager
    def using(self, adapter: str | None) -> Iterator[torch.nn.Module]:
        """Run the block with exactly `adapter` active (None: the bare base model; "*": rows choose)."""
        with self._lock:
            if adapter == "*":  # a mixed batch: each row names its adapter
                yield self.peft
            elif adapter is None:
                if self.peft is None:
                    yield self.base
                else:
                    with self.peft.disable_adapter():
                        yield self.peft
            else:
                self.peft.set_adapter(adapter)
                yield self.peft

    # ---- text -----------------------------------------------------------------------------------

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """Messages to the model's chat template, ending where the assistant's turn begins."""
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError:
            if not messages or messages[0]["role"] != "system" or len(messages) < 2:
                raise
        # Templates without a system role (Gemma's) get the instructions at the start of the first turn.
        system, first, *rest = messages
        merged = {**first, "content": f"{system['content']}\n\n{first['content']}"}
        return self.tokenizer.apply_chat_template([merged, *rest], tokenize=False, add_generation_prompt=True)

    def _generation_config(self, max_new_tokens: int, temperature: float, top_p: float,
                           repetition_penalty: float) -> GenerationConfig:
        sample = temperature > 0
        return GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=sample,
            temperature=temperature if sample else None, top_p=top_p if sample else None, top_k=None,
            repetition_penalty=repetition_penalty, eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id)

    def encode_left_padded(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask of a batch, padded on the left. Padded by hand: asking the fast tokenizer
        to pad switches padding on in its shared state, which a concurrent unpadded call (a server counting
        tokens) switches off mid-way."""
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        width, pad = max(map(len, ids)), self.tokenizer.pad_token_id
        return {"input_ids": torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=self.device),
                "attention_mask": torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=self.device)}

    def encode_shared_prefix(self, module: torch.nn.Module, prompts: list[str],
                             adapter_names: list[str] | None) -> dict[str, Any] | None:
        """The inputs of a batch whose prompts open with the same tokens (a system prompt and chat template),
        or None when they share fewer than MIN_SHARED_PREFIX. Rows are laid out [shared prefix][pads][rest]:
        the prefix's keys and values are computed once per distinct adapter and handed to `generate` as its
        cache, so the batch's prefill runs on the rest only. Positions come from the attention mask, so each
        row sees what it sees left-padded."""
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        shared = 0
        limit = min(map(len, ids)) - 1  # every row keeps a token to prefill
        while shared < limit and all(x[shared] == ids[0][shared] for x in ids):
            shared += 1
        if len(prompts) < 2 or shared < MIN_SHARED_PREFIX:
            return None
        width, pad = max(map(len, ids)), self.tokenizer.pad_token_id
        prefix = ids[0][:shared]
        rows = [prefix + [pad] * (width - len(x)) + x[shared:] for x in ids]
        mask = [[1] * shared + [0] * (width - len(x)) + [1] * (len(x) - shared) for x in ids]
        inputs: dict[str, Any] = {}
        distinct = sorted(set(adapter_names or [None]), key=str)
        if adapter_names is not None:
            inputs["adapter_names"] = distinct
        cache = DynamicCache(config=self.base.config)
        module(input_ids=torch.tensor([prefix] * len(distinct), device=self.device), cache=cache, use_cache=True, **inputs)
        cache.batch_select_indices(torch.tensor([distinct.index(a) for a in adapter_names or [None] * len(ids)],
                                                device=self.device))
        encoded = {"input_ids": torch.tensor(rows, device=self.device),
                   "attention_mask": torch.tensor(mask, device=self.device), "cache": cache}
        if adapter_names is not None:
            encoded["adapter_names"] = adapter_names
        return encoded

    @torch.inference_mode()
    def generate(self, prompts: list[str], *, adapter: str | None | list[str | None] = None, max_new_tokens: int = 64,
                 temperature: float = 0.0, top_p: float = 1.0, repetition_penalty: float = 1.0,
                 seed: int = 0, batch_size: int = 32) -> list[str]:
        """Complete each prompt (already templated). Greedy when temperature is 0; batched (batch 32 decodes
        30 short answers in about half the time batch 8 takes on 2 CPU cores) in order of length, so that a
        short prompt is not padded to a long one's length, with the prompts' shared prefix computed once where
        they have one, else left-padded.
        `adapter` is one adapter for every prompt (None: the base model), or a list with one per prompt,
        decoded together as mixed batches."""
        config = self._generation_config(max_new_tokens, temperature, top_p, repetition_penalty)
        mixed = isinstance(adapter, list) and self.peft is not None  # without adapters every row is the base
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # characters: a proxy for tokens
        outputs: list[str] = [""] * len(prompts)
        with self.using("*" if mixed else None if isinstance(adapter, list) else adapter) as module:
            for start in range(0, len(prompts), batch_size):
                rows = order[start:start + batch_size]
                batch = [prompts[i] for i in rows]
                names = [adapter[i] or "__base__" for i in rows] if mixed else None
                enc = self.encode_shared_prefix(module, batch, names)
                if enc is None:
                    enc = self.encode_left_padded(batch)
                    if mixed:
                        enc["adapter_names"] = names
                torch.manual_seed(seed + start)
                out = module.generate(**enc, generation_config=config)
                new = out[:, enc["input_ids"].shape[1]:]
                for i, text in zip(rows, self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                    outputs[i] = text.strip()
        return outputs

    def stream(self, prompt: str, *, adapter: str | None = None, max_new_tokens: int = 256,
               temperature: float = 0.0, top_p: float = 1.0, repetition_penalty: float = 1.1,
               seed: int = 0, stop: Callable[[], bool] | None = None) -> Iterator[str]:
        """Yield the completion of one prompt piece by piece as it is decoded; decoding ends early once
        `stop()` is true (checked every token: a server's client went away)."""
        config = self._generation_config(max_new_tokens, temperature, top_p, repetition_penalty)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        enc = self.encode_left_padded([prompt])
        limits = _RowLimits(enc["input_ids"].shape[1], [max_new_tokens], None if stop is None else lambda row: stop())
        yield from self._streamed(adapter, {**enc, "generation_config": config,
                                            "stopping_criteria": StoppingCriteriaList([limits])}, streamer, seed)

    def _streamed(self, adapter: str | None, inputs: dict, streamer: Any, seed: int) -> Iterator[Any]:
        """Run `generate` in a thread with `streamer` and yield what the streamer yields; an error in the
        thread is raised here."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self.using(adapter) as module, torch.inference_mode():
                    torch.manual_seed(seed)
                    module.generate(**inputs, streamer=streamer)
            except BaseException as e:  # re-raised in the consumer's thread below
                errors.append(e)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise errors[0]

    @torch.inference_mode()
    def stream_rows(self, prompts: list[str], *, adapters: list[str | None], max_new_tokens: list[int],
                    repetition_penalty: float = 1.1,
                    stopped: Callable[[int], bool] | None = None) -> Iterator[tuple[int, str | None]]:
        """Greedy-decode several prompts together, each on its own adapter (None: the base model), and yield
        (row, piece) as each row's text grows, then (row, None) when that row is done (a stop token, or its own
        `max_new_tokens`, or `stopped(row)`: its client went away). One forward pass per step serves every
        row: a server answers concurrent requests at batch speed. Must be consumed to the end (it holds the
        model meanwhile)."""
        enc = self.encode_left_padded(prompts)
        # One adapter for every row is the fast path; per-row adapters go through PEFT's mixed batches.
        mixed = self.peft is not None and len(set(adapters)) > 1
        if mixed:
            enc["adapter_names"] = [a or "__base__" for a in adapters]
        config = self._generation_config(max(max_new_tokens), 0.0, 1.0, repetition_penalty)
        rows = _Rows(self.tokenizer, self.stop_ids, max_new_tokens)
        stop = StoppingCriteriaList([_RowLimits(enc["input_ids"].shape[1], max_new_tokens, stopped)])
        yield from self._streamed("*" if mixed else adapters[0], {**enc, "generation_config": config,
                                                                  "stopping_criteria": stop}, rows, seed=0)


class _RowLimits(StoppingCriteria):
    """Each row stops at its own token limit, or once `stopped(row)` (generate stops rows at stop tokens itself)."""

    def __init__(self, prompt_length: int, limits: list[int], stopped: Callable[[int], bool] | None = None):
        self.prompt_length, self.limits, self.stopped = prompt_length, torch.tensor(limits), stopped

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        done = input_ids.shape[1] - self.prompt_length >= self.limits
        if self.stopped is not None:
            done |= torch.tensor([self.stopped(row) for row in range(len(self.limits))])
        return done.to(input_ids.device)  # generate combines it with its own flags, on the model's device


class _Rows(BaseStreamer):
    """Receives each decoding step's tokens for the whole batch; queues (row, text piece) and (row, None)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop_ids: list[int], limits: list[int]):
        self.tokenizer, self.stop_ids, self.limits = tokenizer, set(stop_ids), limits
        self.ids: list[list[int]] = [[] for _ in limits]
        self.sent = [0] * len(limits)
        self.done = [False] * len(limits)
        self.prompt_seen = False
        self.queue: queue.Queue = queue.Queue()

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate hands over the prompt first
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.done[row]:
                continue
            if token in self.stop_ids:
                self._finish(row)
                continue
            self.ids[row].append(token)
            text = self.tokenizer.decode(self.ids[row], skip_special_tokens=True)
            if not text.endswith("\ufffd") and len(text) > self.sent[row]:  # an incomplete character waits
                self.queue.put((row, text[self.sent[row]:]))
                self.sent[row] = len(text)
            if len(self.ids[row]) >= self.limits[row]:
                self._finish(row)

    def _finish(self, row: int) -> None:
        text = self.tokenizer.decode(self.ids[row], skip_special_tokens=True)
        if len(text) > self.sent[row]:
            self.queue.put((row, text[self.sent[row]:]))
        self.done[row] = True
        self.queue.put((row, None))

    def end(self) -> None:
        for row in range(len(self.done)):
            if not self.done[row]:
                self._finish(row)
        self.queue.put(None)

    def __iter__(self) -> Iterator[tuple[int, str | None]]:
        while (item := self.queue.get()) is not None:
            yield item
