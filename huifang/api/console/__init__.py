"""The web console at `/`: server-rendered pages per role (agent, unit supervisor, inspector,
admin) with htmx where it clearly helps. `router` gathers every console page."""

from __future__ import annotations

from fastapi import APIRouter

from huifang.api.console import (
    admin,
    cases,
    dashboard,
    notifications,
    reviews,
    second_callbacks,
    tickets,
    tokens,
    web,
)

router = APIRouter(include_in_schema=False)
for pages in (web, dashboard, cases, reviews, second_callbacks, tickets, admin, tokens):
    router.include_router(pages.router)
router.include_router(tickets.upload_router)
router.include_router(notifications.router)
