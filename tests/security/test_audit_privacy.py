"""Item 6: the audit log records who and what, never a full phone number, and reading it
is itself audited."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, text
from sqlmodel import Session

from huifang.domain.audit import record_audit
from huifang.domain.campaigns import opt_out
from huifang.domain.models import AuditEvent
from tests.security.conftest import Login

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
PHONE = "+8613812345678"


def _entries(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, target_type, target_id, detail FROM audit_events ORDER BY id")
        )
        return [(a, t, i, str(d)) for a, t, i, d in rows]


def test_an_opt_out_is_audited_without_the_number(engine: Engine) -> None:
    with Session(engine) as session:
        opt_out(session, phone=PHONE, source="sms", now=NOW)
        session.commit()
    [(action, target_type, target_id, detail)] = _entries(engine)
    assert (action, target_type) == ("opt_out", "opt_out")
    assert "13812345678" not in target_id + detail
    assert "138****5678" in detail


def test_a_number_handed_to_the_audit_log_is_masked_on_the_way_in(engine: Engine) -> None:
    with Session(engine) as session:
        record_audit(
            session, at=NOW, actor=None, action="login.failed", target_type="user",
            target_id="13812345678", detail={"typed": [f"call {PHONE} back"]},
        )  # fmt: skip
        session.commit()
    [(_action, _type, target_id, detail)] = _entries(engine)
    assert target_id == "138****5678"
    assert "12345678" not in detail


def _old_entry_with_a_number(engine: Engine) -> None:
    """An entry written before the rule, straight into the table."""
    with engine.begin() as conn:
        conn.execute(
            insert(AuditEvent.__table__).values(  # type: ignore[attr-defined]
                at=NOW, actor="system", action="opt_out", target_type="phone",
                target_id=PHONE, detail={"note": PHONE},
            )
        )  # fmt: skip


def test_reading_the_log_over_the_api_masks_old_entries_and_is_audited(
    login_as: Login, engine: Engine
) -> None:
    _old_entry_with_a_number(engine)
    reply = login_as("inspector").get("/api/v1/audit", params={"action": "opt_out"})
    assert "13812345678" not in reply.text
    assert "138****5678" in reply.text
    read = [e for e in _entries(engine) if e[0] == "audit.read"]
    assert len(read) == 1 and "opt_out" in read[0][3]


def test_reading_the_log_in_the_console_masks_old_entries_and_is_audited(
    login_as: Login, engine: Engine
) -> None:
    _old_entry_with_a_number(engine)
    page = login_as("admin").get("/audit", params={"q": "13812345678"})
    entries = page.text.split('id="audit-table"', 1)[1]  # the search box echoes the query
    assert "138****5678" in entries
    assert "13812345678" not in entries
    [read] = [e for e in _entries(engine) if e[0] == "audit.read"]
    assert "13812345678" not in read[3]  # what the reader searched for is masked too
