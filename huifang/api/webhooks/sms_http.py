"""The generic HTTP SMS gateway's webhooks: a citizen's reply and a delivery report.

A domestic carrier's SMS platform calls us back the way it is configured to, so field names
come from settings (`sms_http_inbound_*`, `sms_http_status_*`), not from code; the body may
be JSON or a form, whichever the platform sends.

Rules kept here:
- with `sms_http_signature_secret` set, every request must carry `X-Huifang-Signature`, the
  hex HMAC-SHA256 of the exact body bytes, compared in constant time; without a secret every
  request is refused unless `sms_http_allow_unsigned` says otherwise. A refused request gets
  403 before anything is parsed, read or written;
- a reply is applied once per platform message id (`handle_inbound_sms` is idempotent):
  the platform's retries store no second reply and send no second confirmation; the
  confirmation is sent after the answer, in a background task;
- a delivery report is mapped through `sms_http_status_map`; a status we do not know changes
  nothing (204, logged) and one we know never moves a message backwards; it finds its
  message by the platform's id, or by the `reference` we sent when the platform echoes it;
- a missing field is a 422 naming the field and the setting that names it;
- database work runs off the event loop (`Runtime.run_db`).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from huifang.api.deps import RuntimeDep
from huifang.bootstrap import Runtime
from huifang.db import session_scope
from huifang.sms.http import SIGNATURE_HEADER, body_signature
from huifang.sms.registry import send_reply
from huifang.sms.survey import DELIVERY_EVENTS, handle_delivery_status, handle_inbound_sms

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks/sms-http", tags=["webhooks"])

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: what the platform may be answered besides success (documented in the OpenAPI schema)
_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "unsigned or badly signed (X-Huifang-Signature): nothing applied"},
    415: {"description": "the body is neither JSON nor a form"},
    422: {"description": "a field is missing (the detail names it and its setting)"},
}


async def signed_fields(request: Request, runtime: RuntimeDep) -> dict[str, str]:
    """The request's fields (JSON object or form), once its signature is proven ours."""
    settings = runtime.settings
    body = await request.body()
    secret = settings.sms_http_signature_secret.get_secret_value()
    if secret:
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.lower().encode(), body_signature(secret, body).encode()):
            raise HTTPException(
                status_code=403,
                detail=f"{SIGNATURE_HEADER} is missing or is not the HMAC-SHA256 of the body "
                "with sms_http_signature_secret",
            )
    elif not settings.sms_http_allow_unsigned:
        raise HTTPException(
            status_code=403,
            detail="unsigned SMS webhooks are refused: set sms_http_signature_secret "
            f"(the platform signs with {SIGNATURE_HEADER}) or sms_http_allow_unsigned = true",
        )
    return await _fields(request, body)


SignedFields = Annotated[dict[str, str], Depends(signed_fields)]


async def _fields(request: Request, body: bytes) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith(_FORM_TYPES):
        form = await request.form()  # reads the body already read above
        return {name: value for name, value in form.items() if isinstance(value, str)}
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=f"the body is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise HTTPException(status_code=422, detail="the JSON body is not an object")
        return {name: _text(value) for name, value in document.items() if value is not None}
    raise HTTPException(
        status_code=415,
        detail="send application/json or application/x-www-form-urlencoded, "
        f"not {content_type or 'a body without Content-Type'!r}",
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _required(fields: dict[str, str], runtime: Runtime, setting: str) -> str:
    """The field named by `setting`; 422 naming both when it is absent or blank."""
    name: str = getattr(runtime.settings, setting)
    value = fields.get(name, "")
    if not value.strip():
        raise HTTPException(status_code=422, detail=f"field {name!r} ({setting}) is missing")
    return value


# --- a citizen's reply -------------------------------------------------------------------


@router.post("/inbound", responses=_REFUSALS)
async def inbound(
    runtime: RuntimeDep, fields: SignedFields, background: BackgroundTasks
) -> JSONResponse:
    """A citizen's reply: classified, stored once, answered by SMS when it calls for one."""
    phone = _required(fields, runtime, "sms_http_inbound_from_field")
    message_id = _required(fields, runtime, "sms_http_inbound_id_field")
    text_field = runtime.settings.sms_http_inbound_text_field
    if text_field not in fields:
        raise HTTPException(
            status_code=422, detail=f"field {text_field!r} (sms_http_inbound_text_field) is missing"
        )
    reply_id = await runtime.run_db(_apply_reply, runtime, phone, fields[text_field], message_id)
    if reply_id is not None:
        background.add_task(send_reply, runtime, reply_id)
    return JSONResponse({"status": "ok"})


def _apply_reply(runtime: Runtime, phone: str, body: str, message_id: str) -> int | None:
    """Store and act on the reply; the id of the SMS to send back, if any."""
    with session_scope(runtime.engine) as db:
        outcome = handle_inbound_sms(
            db,
            phone=phone,
            body=body,
            provider_message_id=message_id,
            now=runtime.clock.now(),
            settings=runtime.settings,
            reader=runtime.reader(),
        )
        return outcome.reply_sms_id


# --- a delivery report -------------------------------------------------------------------


@router.post(
    "/status",
    response_model=None,
    responses={**_REFUSALS, 204: {"description": "a status we do not know: nothing changed"}},
)
async def delivery_status(runtime: RuntimeDep, fields: SignedFields) -> Response:
    """The platform's delivery report on one of our messages."""
    message_id = _required(fields, runtime, "sms_http_status_id_field")
    word = _required(fields, runtime, "sms_http_status_field").strip()
    status = runtime.settings.sms_http_status_map.get(word, word).lower()
    if status not in DELIVERY_EVENTS:
        log.warning(
            "SMS %s: delivery status %r is not one we know (%s) nor mapped by "
            "sms_http_status_map; nothing changed",
            message_id,
            word,
            ", ".join(DELIVERY_EVENTS),
        )
        return Response(status_code=204)
    # our reference (the message's id) finds a message whose send reply we have not stored yet
    reference = fields.get(runtime.settings.sms_http_status_reference_field, "").strip()
    sms_id = int(reference) if reference.isdecimal() else None
    await runtime.run_db(_apply_status, runtime, message_id, status, sms_id)
    return JSONResponse({"status": "ok"})


def _apply_status(runtime: Runtime, message_id: str, status: str, sms_id: int | None) -> bool:
    with session_scope(runtime.engine) as db:
        return handle_delivery_status(
            db,
            provider_message_id=message_id,
            status=status,
            now=runtime.clock.now(),
            sms_id=sms_id,
        )
