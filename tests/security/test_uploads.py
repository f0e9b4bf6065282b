"""Item 5: a refused rectification report leaves no file on disk; attachments are served
for download, never with the uploader's content type (item 8)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huifang.api.app import create_app
from huifang.bootstrap import Runtime
from huifang.domain.models import Escalation
from tests.security.conftest import Login

EVIDENCE = [("files", ("photo.jpg", b"\xff\xd8" + b"j" * 50_000, "image/jpeg"))]


@pytest.fixture
def ticket(claimed: TestClient, escalation: Escalation) -> dict[str, Any]:
    reply = claimed.post(
        f"/api/v1/escalations/{escalation.id}/resolve",
        json={"outcome": "ticket", "findings": "出警迟到属实"},
    )
    result: dict[str, Any] = reply.json()["ticket"]
    return result


@pytest.fixture
def attachments_dir(runtime: Runtime) -> Path:
    return runtime.settings.data_dir / "attachments"


def _files_in(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.exists() else []


def _report(client: TestClient, ticket: dict[str, Any], files: list[Any] = EVIDENCE) -> int:
    return client.post(
        f"/api/v1/tickets/{ticket['id']}/rectification", data={"text": "已整改"}, files=files
    ).status_code


@pytest.mark.parametrize("role", ["agent", "inspector"])
def test_a_report_from_a_role_that_may_not_report_stores_nothing(
    login_as: Login, ticket: dict[str, Any], attachments_dir: Path, role: str
) -> None:
    assert _report(login_as(role), ticket) == 403
    assert _files_in(attachments_dir) == []


def test_a_report_on_a_ticket_not_yet_acknowledged_stores_nothing(
    login_as: Login, ticket: dict[str, Any], attachments_dir: Path
) -> None:
    assert _report(login_as("supervisor"), ticket) == 409
    assert _files_in(attachments_dir) == []


def test_a_report_from_another_units_supervisor_stores_nothing(
    login_as: Login, ticket: dict[str, Any], attachments_dir: Path
) -> None:
    login_as("supervisor").post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    assert _report(login_as("other_supervisor"), ticket) == 403
    assert _files_in(attachments_dir) == []


def test_the_files_of_a_report_whose_transaction_fails_are_removed(
    runtime: Runtime,
    login_as: Login,
    ticket: dict[str, Any],
    attachments_dir: Path,
    audit_refused: Callable[[], AbstractContextManager[None]],
) -> None:
    chief = login_as("supervisor")
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    with (
        audit_refused(),
        TestClient(
            create_app(runtime), raise_server_exceptions=False, cookies=chief.cookies,
            headers=chief.headers,
        ) as plain,
    ):  # fmt: skip
        assert _report(plain, ticket) >= 500
    assert _files_in(attachments_dir) == []


def test_a_file_over_the_per_file_limit_is_refused_and_removed(
    login_as: Login, ticket: dict[str, Any], attachments_dir: Path
) -> None:
    chief = login_as("supervisor")
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    big = [("files", ("scan.pdf", b"%" * (20 * 1024 * 1024 + 1), "application/pdf"))]
    assert _report(chief, ticket, big) == 422
    assert _files_in(attachments_dir) == []


def test_an_accepted_report_keeps_its_file(
    login_as: Login, ticket: dict[str, Any], attachments_dir: Path
) -> None:
    chief = login_as("supervisor")
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    assert _report(chief, ticket) == 200
    assert len(_files_in(attachments_dir)) == 1


@pytest.mark.parametrize(
    ("uploaded_as", "served_as"),
    [
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        ("image/png", "image/png"),
    ],
)
def test_an_attachment_is_a_download_never_of_the_uploaders_active_type(
    login_as: Login, ticket: dict[str, Any], uploaded_as: str, served_as: str
) -> None:
    chief = login_as("supervisor")
    chief.post(f"/api/v1/tickets/{ticket['id']}/acknowledge", json={})
    _report(chief, ticket, [("files", ("x", b"<script>alert(1)</script>", uploaded_as))])
    [attachment] = chief.get(f"/api/v1/tickets/{ticket['id']}").json()["attachments"]
    reply = chief.get(f"/api/v1/tickets/{ticket['id']}/attachments/{attachment['id']}")
    assert reply.headers["content-type"].split(";")[0] == served_as
    assert reply.headers["content-disposition"].startswith("attachment")
    assert reply.headers["x-content-type-options"] == "nosniff"
