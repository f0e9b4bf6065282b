"""Property-based run of the follow-up API against its own OpenAPI schema (schemathesis):
no 5xx, and every response matches the schema it documents.

Bounded: a few examples per operation on one SQLite database, as an admin (the role that
reaches the most code). Other engineers' surfaces (stats, console, webhooks) run their own.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock, SystemClock
from huifang.domain.api_tokens import create_api_token
from huifang.settings import Settings
from tests.factories import make_escalation, make_incident

FOLLOWUP_PATHS = (
    r"^/api/v1/(auth|users|units|escalations|recordings|tickets|notices|audit|incidents)"
)
EXAMPLES = 5


class FakeBridge:
    """A provider that can bridge: without one, click-to-call answers 501 by design."""

    async def bridge(self, agent_phone: str, citizen_phone: str, attempt_ref: str) -> str:
        return f"fake-{attempt_ref}"


@pytest.fixture
def api_app(runtime: Runtime, world: Any) -> FastAPI:
    runtime.services["telephony"] = FakeBridge()
    return create_app(runtime)


@pytest.fixture
def admin_headers(engine: Engine, clock: FakeClock, world: Any) -> dict[str, str]:
    """An admin's bearer token, and an escalation so that ids near 1 lead somewhere."""
    with Session(engine, expire_on_commit=False) as session:
        make_escalation(session, incident=make_incident(session, unit=world.station))
        token = create_api_token(session, world.users["admin"], "schemathesis", clock.now())
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def _schema_only_app() -> FastAPI:
    # the schema does not depend on the runtime: a runtime without a database describes it
    return create_app(Runtime(settings=Settings(), engine=None, clock=SystemClock()))  # type: ignore[arg-type]


schema = schemathesis.openapi.from_dict(_schema_only_app().openapi()).include(
    path_regex=FOLLOWUP_PATHS
)


#: no 5xx, and every response as the schema documents it
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def bounded(examples: int) -> settings:
    """A few examples per operation, the same on every run: CI stays reproducible."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
        ],
    )


@schema.parametrize()
@bounded(EXAMPLES)
def test_followup_api_conforms_to_its_schema(
    case: Any, api_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(app=api_app, headers=admin_headers, checks=CHECKS)
