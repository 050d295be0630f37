"""`Batcher`: the server's one decoding thread. Greedy requests that are waiting when a batch starts decode
together, each on its own version, in one forward pass per step (`LanguageModel.stream_rows`), so eight
concurrent clients cost little more than one. Sampled requests decode alone (their seeds stay
reproducible), and so does everything on a remote engine (which batches by itself). A request's pieces
reach it through its own queue, as they are decoded."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from model_runtime import LanguageModel

DONE = object()


MAX_VERSIONS = 4  # versions in one batch: the workspace keeps this many adapters attached per lineage


@dataclass
class Request:
    prompt: str
    model: str  # the version (or loaded adapter) that answers
    adapter: Callable[[], str | None]  # attaches it; runs on the decoding thread
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    repetition_penalty: float | None
    pieces: queue.Queue = field(default_factory=queue.Queue)  # str pieces, then DONE (or an exception)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Batcher:
    def __init__(self, engine: Callable[[], Any], lock: threading.Lock, max_batch: int = 8):
        self.engine, self.lock, self.max_batch = engine, lock, max_batch
        self.waiting: queue.Queue[Request] = queue.Queue()
        self.started = False
        self.start_lock = threading.Lock()

    def submit(self, request: Request) -> Iterator[str]:
        """Queue a request; yield its pieces as they are decoded."""
        with self.start_lock:
            if not self.started:
                threading.Thread(target=self._loop, daemon=True, name="decoder").start()
                self.started = True
        self.waiting.put(request)
        while (item := request.pieces.get()) is not DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _loop(self) -> None:
        held: list[Request] = []  # taken from the queue while gathering a batch, but not batchable with it
        while True:
            first = held.pop(0) if held else self.waiting.get()
            batch = [first]
            batchable = first.greedy and isinstance(self.engine(), LanguageModel)
            while batchable and len(batch) < self.max_batch:
                try:
                    other = self.waiting.get_nowait()
                except queue.Empty:
                    break
                models = {r.model for r in batch} | {other.model}
                fits = other.greedy and other.repetition_penalty == first.repetition_penalty and len(models) <= MAX_VERSIONS
                (batch if fits else held).append(other)
            try:
                with self.lock:
                    self._decode(batch)
            except BaseException as e:  # handed to every request of the batch; the server keeps serving
                for r in batch:
                    r.pieces.put(e)
                continue
            for r in batch:
                r.pieces.put(DONE)

    def _decode(self, batch: list[Request]) -> None:
        engine = self.engine()
        adapters = [r.adapter() for r in batch]
        penalty = {} if batch[0].repetition_penalty is None else {"repetition_penalty": batch[0].repetition_penalty}
        if len(batch) == 1:
            r = batch[0]
            for piece in engine.stream(r.prompt, adapter=adapters[0], max_new_tokens=r.max_tokens,
                                       temperature=r.temperature, top_p=r.top_p, seed=r.seed, **penalty):
                r.pieces.put(piece)
            return
        for row, piece in engine.stream_rows([r.prompt for r in batch], adapters=adapters,
                                             max_new_tokens=[r.max_tokens for r in batch], **penalty):
            if piece is not None:
                batch[row].pieces.put(piece)
