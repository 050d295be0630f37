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
from seal.errors import SealError

DONE = object()


MAX_VERSIONS = 4  # versions in one batch: the workspace keeps this many adapters attached per lineage
MAX_WAITING = 64  # requests queued for decoding before new ones are refused


class Busy(Exception):
    """The decoding queue is full."""


@dataclass
class DecodeRequest:
    prompt: str
    model: str  # the version (or loaded adapter) that answers
    adapter: Callable[[], str | None]  # attaches it; runs on the decoding thread
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    repetition_penalty: float | None
    pieces: queue.Queue = field(default_factory=queue.Queue)  # str pieces, then DONE (or an exception)
    cancelled: threading.Event = field(default_factory=threading.Event)  # its client went away: stop decoding it

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Batcher:
    def __init__(self, engine: Callable[[], Any], lock: threading.Lock, max_batch: int = 8):
        self.engine, self.lock, self.max_batch = engine, lock, max_batch
        self.waiting: queue.Queue[DecodeRequest] = queue.Queue()
        self.started = False
        self.start_lock = threading.Lock()

    def submit(self, request: DecodeRequest) -> Iterator[str]:
        """Queue a request; yield its pieces as they are decoded. A full queue is refused (Busy). Set
        `request.cancelled` to drop it: decoding it stops within a token, and it ends."""
        with self.start_lock:
            if not self.started:
                threading.Thread(target=self._loop, daemon=True, name="decoder").start()
                self.started = True
        if self.waiting.qsize() >= MAX_WAITING:
            raise Busy(f"{MAX_WAITING} requests are already waiting to be decoded; retry shortly")
        self.waiting.put(request)
        while (item := request.pieces.get()) is not DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _loop(self) -> None:
        held: list[DecodeRequest] = []  # taken from the queue while gathering a batch, but not batchable with it
        while True:
            batch = [held.pop(0) if held else self.waiting.get()]
            try:
                with self.lock:
                    self._gather(batch, held)
                    self._decode(batch)
            except BaseException as e:  # handed to every request still decoding; the server keeps serving
                for r in batch:
                    r.pieces.put(e)

    def _gather(self, batch: list[DecodeRequest], held: list[DecodeRequest]) -> None:
        """Add the waiting requests that can decode with the first: greedy, same penalty, few versions."""
        first = batch[0]
        if not first.greedy or not isinstance(self.engine(), LanguageModel):  # a remote engine batches by itself
            return
        while len(batch) < self.max_batch:
            try:
                other = self.waiting.get_nowait()
            except queue.Empty:
                return
            versions = {r.model for r in batch} | {other.model}
            fits = other.greedy and other.repetition_penalty == first.repetition_penalty and len(versions) <= MAX_VERSIONS
            (batch if fits else held).append(other)

    def _decode(self, batch: list[DecodeRequest]) -> None:
        """Decode the batch; each request is finished (DONE, or its error) and removed from `batch` as it ends."""
        engine = self.engine()
        adapters = []
        for r in list(batch):  # a request whose version cannot be attached fails alone
            if r.cancelled.is_set():  # its client left while it waited
                r.pieces.put(DONE)
                batch.remove(r)
                continue
            try:
                adapters.append(r.adapter())
            except SealError as e:  # a pruned, unloaded or tampered version: that request fails with it
                r.pieces.put(e)
                batch.remove(r)
        if len(batch) == 1:
            r = batch[0]
            penalty = {} if r.repetition_penalty is None else {"repetition_penalty": r.repetition_penalty}
            for piece in engine.stream(r.prompt, adapter=adapters[0], max_new_tokens=r.max_tokens,
                                       temperature=r.temperature, top_p=r.top_p, seed=r.seed,
                                       stop=r.cancelled.is_set, **penalty):
                r.pieces.put(piece)
        elif batch:
            penalty = {} if batch[0].repetition_penalty is None else {"repetition_penalty": batch[0].repetition_penalty}
            rows = list(batch)
            for row, piece in engine.stream_rows([r.prompt for r in rows], adapters=adapters,
                                                 max_new_tokens=[r.max_tokens for r in rows],
                                                 stopped=lambda row: rows[row].cancelled.is_set(), **penalty):
                if piece is None:  # this row is done: its client need not wait for the longest row
                    rows[row].pieces.put(DONE)
                    batch.remove(rows[row])
                else:
                    rows[row].pieces.put(piece)
        for r in batch:
            r.pieces.put(DONE)
        batch.clear()
