"""The audit search on both databases: words in the details match, literally."""

from __future__ import annotations

from sqlmodel import Session

from huifang.clock import FakeClock
from huifang.domain.audit import record_audit
from huifang.stats.audit_log import AuditFilters, search_audit
from tests.followup.conftest import Staff


def test_words_in_the_details_match_literally(
    session: Session, staff: Staff, clock: FakeClock
) -> None:
    for n, words in enumerate(["出警迟缓 100%", "态度生硬"]):
        record_audit(
            session, at=clock.now(), actor=staff.admin, action="ticket.issue",
            target_type="ticket", target_id=n, detail={"findings": words},
        )  # fmt: skip
    session.flush()
    found = search_audit(session, AuditFilters(text="迟缓 100%"))
    assert (found.total, [e.target_id for e in found.entries]) == (1, ["0"])
    assert search_audit(session, AuditFilters(text="_")).total == 0
