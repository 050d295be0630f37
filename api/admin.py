"""The admin and document surface: queue a document for `seal run` (`POST /v1/documents`) and follow its job,
list knowledge versions and make one active. Nothing here decodes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from agent.ingest import DocumentInput, check_text, title_of
from agent.runtime import submit
from agent.versions import list_versions, resolve, rollback
from agent.workspace import Workspace
from api.errors import ApiError
from memory import Job
from seal.errors import InputError, NotFoundError

router = APIRouter()


def home(request: Request) -> Workspace:
    """The workspace the app serves (`create_app` keeps it in the app's state)."""
    return request.app.state.ws


Home = Annotated[Workspace, Depends(home)]


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


def job_record(job: Job) -> dict[str, Any]:
    return {"id": job.id, "object": "job", "status": job.status, "origin": job.origin, "title": job.title,
            "document_id": job.document_id, "result": job.result, "error": job.error or None,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at}


@router.post("/v1/documents", status_code=202)
async def documents(body: DocumentRequest, ws: Home) -> dict[str, Any]:
    try:
        text = check_text(body.text.encode("utf-8"), "text", ws.config.ingest.max_bytes)
    except InputError as e:
        raise ApiError(400, str(e), param="text") from None
    item = DocumentInput(body.source, body.title or title_of(text), text,
                         tuple((qa.question, qa.answer) for qa in body.questions))
    return job_record(submit(ws, item, origin="api"))


@router.get("/v1/jobs/{job_id}")
async def job(job_id: Annotated[int, PathParam(ge=1, le=2**62)], ws: Home) -> dict[str, Any]:
    try:
        return job_record(ws.store.job(job_id))
    except NotFoundError as e:
        raise ApiError(404, str(e), code="job_not_found") from None


@router.get("/v1/versions")
async def versions(ws: Home) -> dict[str, Any]:
    return {"active": ws.store.active("knowledge"), "versions": list_versions(ws)}


@router.post("/v1/versions/{version}/activate")
async def activate(version: str, ws: Home) -> dict[str, Any]:
    try:
        number = resolve(ws, version)
        previous = await run_in_threadpool(rollback, ws, number)
    except NotFoundError as e:
        raise ApiError(404, str(e), code="version_not_found", param="version") from None
    except InputError as e:
        raise ApiError(400, str(e), param="version") from None
    return {"active": number, "previous": previous}
