"""Item 8 through the OpenAPI schema: schemathesis throws generated input at the surfaces
whose bad input used to be a 500 (statistics periods, incident imports: long fields, NUL
bytes, strange encodings), on SQLite and PostgreSQL, as an admin: no 5xx, and every
response as documented."""

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

EXAMPLES = 25


@pytest.fixture
def api_app(runtime: Runtime, world: Any) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def admin_headers(engine: Engine, clock: FakeClock, world: Any) -> dict[str, str]:
    with Session(engine, expire_on_commit=False) as session:
        token = create_api_token(session, world.users["admin"], "schemathesis", clock.now())
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def _schema_only_app() -> FastAPI:
    return create_app(Runtime(settings=Settings(), engine=None, clock=SystemClock()))  # type: ignore[arg-type]


schema = schemathesis.openapi.from_dict(_schema_only_app().openapi()).include(
    path_regex=r"^/api/v1/(stats|incidents)"
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_statistics_and_imports_never_answer_500(
    case: Any, api_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(
        app=api_app,
        headers=admin_headers,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
