"""Item 8 through the OpenAPI schema: schemathesis throws generated input at the surfaces
whose bad input used to be a 500 (statistics periods, incident imports: long fields, NUL
bytes, strange encodings), on SQLite and PostgreSQL, as an admin: no 5xx, and every
response as documented."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.clock import FakeClock
from huifang.domain.api_tokens import create_api_token
from tests.api.test_api_schemathesis import CHECKS, _schema_only_app, bounded

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


schema = schemathesis.openapi.from_dict(_schema_only_app().openapi()).include(
    path_regex=r"^/api/v1/(stats|incidents)"
)


@schema.parametrize()
@bounded(EXAMPLES)
def test_statistics_and_imports_never_answer_500(
    case: Any, api_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(app=api_app, headers=admin_headers, checks=CHECKS)
