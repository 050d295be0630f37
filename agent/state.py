"""The state of one document's ingest as it moves through the graph. Only plain data: it is
checkpointed after every stage so an interrupted ingest resumes where it stopped."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class IngestState(TypedDict, total=False):
    document_id: int
    collect: bool  # score the candidates and log their rewards (policy data), commit nothing
    drafts: Annotated[list[list[Any]], operator.add]  # per passage generated: [prompt, [K self-edit texts]]
    passages: int  # how many passages the document is learned by
    started: float  # when generation began (time.time()), for the ETA
    policy: int  # the policy version that writes every passage's self-edits
    parent_version: int  # knowledge version every candidate trains from (fixed at generate)
    candidates: list[int]  # self-edit ids, tried in order
    current: int  # index into candidates of the one being adapted / verified
    candidate_dir: str  # adapter trained for the current candidate (scratch folder)
    train: dict[str, Any]  # loss curve, tokens, seconds of the current candidate's training
    before: dict[str, Any]  # parent version's answers, shared by all candidates
    base: dict[str, Any]  # the base model's answers to the general-ability set, shared by all candidates
    trials: Annotated[list[dict[str, Any]], operator.add]  # {"trial_id", "passed", "reward", "dir"}
    version: int  # the committed knowledge version; 0 when the document was rejected
