"""Units and call scripts over HTTP, as the console edits them: a unit renamed or moved under
a unit above its level (a clear refusal otherwise); scripts listed, checked and published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from huifang.ivr.script import builtin_scripts_dir

Login = Callable[[str], TestClient]


def test_an_admin_renames_a_unit_and_moves_it_under_another_branch(
    login_as: Login, world: Any
) -> None:
    admin = login_as("admin")
    reply = admin.patch(
        f"/api/v1/units/{world.station.id}",
        json={"name": "东门新所", "parent_id": world.other_station.parent_id},
    )
    assert reply.status_code == 200, reply.text
    assert (reply.json()["name"], reply.json()["parent_id"]) == (
        "东门新所", world.other_station.parent_id
    )  # fmt: skip


def test_a_station_under_a_station_is_refused_naming_the_field(login_as: Login, world: Any) -> None:
    reply = login_as("admin").patch(
        f"/api/v1/units/{world.station.id}", json={"parent_id": world.other_station.id}
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "parent_id"]
    assert "cannot sit under the station" in reply.json()["detail"][0]["msg"]


def test_only_admins_edit_units(login_as: Login, world: Any) -> None:
    reply = login_as("supervisor").patch(f"/api/v1/units/{world.station.id}", json={"name": "x"})
    assert reply.status_code == 403


def test_a_script_is_checked_then_published_then_listed(login_as: Login) -> None:
    admin = login_as("admin")
    text = (builtin_scripts_dir() / "survey-110.zh-CN.yaml").read_text(encoding="utf-8")
    plain = {"Content-Type": "text/plain; charset=utf-8"}
    assert admin.post("/api/v1/scripts/validate", content=text, headers=plain).json() == {
        "valid": True, "problems": []
    }  # fmt: skip
    published = admin.post("/api/v1/scripts", content=text, headers=plain)
    assert published.status_code == 201, published.text
    assert [v["id"] for v in admin.get("/api/v1/scripts").json()] == [published.json()["id"]]


def test_an_invalid_script_is_refused_with_the_path_of_the_bad_node(login_as: Login) -> None:
    reply = login_as("admin").post(
        "/api/v1/scripts",
        content="name: x\nstart: nowhere\n",
        headers={"Content-Type": "text/plain"},
    )
    assert reply.status_code == 422
    assert reply.json()["valid"] is False and reply.json()["problems"][0]["path"]


def test_the_console_actions_of_admins_are_in_the_openapi_document(login_as: Login) -> None:
    paths = login_as("admin").get("/openapi.json").json()["paths"]
    for path, method in [
        ("/api/v1/campaigns", "get"), ("/api/v1/campaigns/{campaign_id}/pause", "post"),
        ("/api/v1/campaigns/{campaign_id}/resume", "post"),
        ("/api/v1/campaigns/{campaign_id}/finish", "post"), ("/api/v1/units/{unit_id}", "patch"),
        ("/api/v1/scripts", "post"), ("/api/v1/scripts/validate", "post"),
    ]:  # fmt: skip
        assert method in paths[path], path
