"""Call scripts over HTTP, for admins, as the console's script pages: the published versions,
a text checked without publishing (every problem with the path of its node), and publishing
(an invalid text is refused with the same list, nothing written)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import col

from huifang.api.auth import require_roles
from huifang.api.deps import ClockDep, SessionDep
from huifang.domain.models import ScriptVersion, User
from huifang.domain.scripts import publish_script
from huifang.domain.users import Role
from huifang.ivr.script import ScriptError, ScriptInvalid, validate_script_text

router = APIRouter(prefix="/scripts", tags=["scripts"])
Admin = Annotated[User, Depends(require_roles(Role.admin))]
#: a script is YAML: it travels as a text body, as the editor holds it
ScriptText = Annotated[
    str, Body(media_type="text/plain", max_length=200_000, description="the script's YAML text")
]


class ScriptVersionPublic(BaseModel):
    id: int
    name: str
    version: int
    language: str
    content_hash: str
    published_at: datetime


class ScriptProblem(BaseModel):
    path: str = Field(description="the bad node, e.g. nodes.attitude.next")
    line: int | None
    message: str

    @classmethod
    def of(cls, error: ScriptError) -> ScriptProblem:
        return cls(path=error.path, line=error.line, message=error.message)


class ScriptCheck(BaseModel):
    valid: bool
    problems: list[ScriptProblem]


@router.get("", response_model=list[ScriptVersionPublic])
def list_endpoint(session: SessionDep, _admin: Admin) -> list[ScriptVersionPublic]:
    """Every published version, by script name, newest version first."""
    rows = session.execute(
        select(ScriptVersion).order_by(col(ScriptVersion.name), col(ScriptVersion.version).desc())
    ).scalars()
    return [ScriptVersionPublic.model_validate(v, from_attributes=True) for v in rows]


@router.post("/validate", response_model=ScriptCheck)
def validate_endpoint(text: ScriptText, _admin: Admin) -> ScriptCheck:
    """Check a script's text without publishing it."""
    problems = [ScriptProblem.of(e) for e in validate_script_text(text)]
    return ScriptCheck(valid=not problems, problems=problems)


@router.post(
    "",
    response_model=ScriptVersionPublic,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": ScriptCheck, "description": "the text is not a valid script"}},
)
def publish_endpoint(
    text: ScriptText, session: SessionDep, clock: ClockDep, admin: Admin
) -> ScriptVersionPublic | JSONResponse:
    """Publish a script: a new version of its name (the same text again returns the version
    already published); audited as `script.publish`."""
    try:
        version = publish_script(session, text, clock.now(), by=admin)
    except ScriptInvalid as invalid:
        check = ScriptCheck(valid=False, problems=[ScriptProblem.of(e) for e in invalid.errors])
        return JSONResponse(check.model_dump(), status_code=422)
    return ScriptVersionPublic.model_validate(version, from_attributes=True)
