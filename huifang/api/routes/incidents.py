"""Incident import over HTTP: the same rules as `huifang import incidents`.

An upload route (`huifang.api.uploads`): the caller is authenticated and must be an admin or
an integration before a byte of the file is read; only then may the body be as large as
`max_import_bytes`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import JSONResponse

from huifang.api.auth import require_roles
from huifang.api.deps import ClockDep, SessionDep, SettingsDep
from huifang.api.uploads import upload_route
from huifang.domain.incidents import (
    AUTO_ENCODING,
    ImportRefused,
    TextLines,
    detect_format,
    import_incidents,
)
from huifang.domain.users import Role
from huifang.followup.escalations import escalate_imported_complaints

# importing is for admins and for the systems that feed us incidents, nobody else
IMPORTERS = (Role.admin, Role.integration)
router = APIRouter(
    prefix="/incidents",
    tags=["incidents"],
    dependencies=[Depends(require_roles(*IMPORTERS))],
    route_class=upload_route(lambda s: s.max_import_bytes, *IMPORTERS),
)


@router.post(
    "/import",
    responses={
        200: {"description": "applied: inserted and unchanged counts, and the rows skipped"},
        422: {
            "description": "refused: nothing was written; every bad row with line, column, reason"
        },
    },
)
def import_incidents_endpoint(
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    file: UploadFile = File(description="CSV (with a header row) or JSON lines"),
    skip_invalid: bool = Query(False, description="keep the good rows when some are bad"),
    encoding: str = Query(
        AUTO_ENCODING,
        max_length=32,
        description="the file's encoding, e.g. gbk; "
        "default: UTF-8, or GB18030 when its start is not UTF-8",
    ),
) -> JSONResponse:
    fmt = detect_format(Path(file.filename or "upload.csv"))
    try:
        report = import_incidents(
            session,
            TextLines(file.file, encoding),
            fmt=fmt,
            tz=settings.tz,
            region=settings.phone_region,
            now=clock.now(),
            skip_invalid=skip_invalid,
        )
    except ImportRefused as exc:
        session.rollback()
        return JSONResponse(status_code=422, content={"applied": False, "detail": str(exc)})
    if not report.applied:
        session.rollback()
        return JSONResponse(status_code=422, content=report.as_dict())
    # imported 12345/12389 complaints go to the agents' queue at once, not at the next sweep
    escalate_imported_complaints(
        session,
        now=clock.now(),
        sla_hours=settings.escalation_sla_hours,
        language=settings.language,
    )
    return JSONResponse(status_code=200, content=report.as_dict())
