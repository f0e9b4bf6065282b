"""The FastAPI application: REST API, webhooks, console. Built by `create_app(runtime)`.

Routers are listed here and nowhere else, so a reader sees every surface of the service in
one place.
"""

from __future__ import annotations

from fastapi import FastAPI

from huifang import __version__
from huifang.api import console
from huifang.api.body_limit import BodyLimit
from huifang.api.errors import install_error_handlers
from huifang.api.headers import SecurityHeaders
from huifang.api.routes import (
    audit,
    auth,
    campaigns,
    docs,
    escalations,
    health,
    incidents,
    metrics,
    notifications,
    reviews,
    scripts,
    second_callbacks,
    stats,
    tickets,
    units,
    users,
)
from huifang.api.webhooks import sms_http as sms_http_webhooks
from huifang.api.webhooks import twilio as twilio_webhooks
from huifang.bootstrap import Runtime, build_runtime
from huifang.settings import Settings


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Huifang (回访) API",
        version=__version__,
        description="Callback satisfaction surveys: incidents, campaigns, answers, escalations, "
        "supervision tickets and statistics.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    # every route of every router gets these: headers and the Origin check inside, the body
    # limit outermost (it closes the connection of any response that left a body unread)
    app.add_middleware(SecurityHeaders, public_base_url=runtime.settings.public_base_url)
    app.add_middleware(BodyLimit, max_body_bytes=runtime.settings.max_body_bytes)
    # first: routes are matched in order, and a survey call's turn is the hottest request
    app.include_router(twilio_webhooks.router)
    app.include_router(sms_http_webhooks.router)
    app.include_router(health.router)
    app.include_router(incidents.router, prefix="/api/v1")
    app.include_router(auth.router, prefix="/api/v1")
    app.include_router(users.router, prefix="/api/v1")
    app.include_router(units.router, prefix="/api/v1")
    app.include_router(escalations.router, prefix="/api/v1")
    app.include_router(escalations.recordings_router, prefix="/api/v1")
    app.include_router(reviews.router, prefix="/api/v1")
    app.include_router(tickets.router, prefix="/api/v1")
    app.include_router(tickets.rectification_router, prefix="/api/v1")
    app.include_router(tickets.notices_router, prefix="/api/v1")
    app.include_router(second_callbacks.router, prefix="/api/v1")
    app.include_router(campaigns.router, prefix="/api/v1")
    app.include_router(scripts.router, prefix="/api/v1")
    app.include_router(notifications.router, prefix="/api/v1")
    app.include_router(notifications.extensions_router, prefix="/api/v1")
    app.include_router(audit.router, prefix="/api/v1")
    app.include_router(stats.router, prefix="/api/v1")
    app.include_router(metrics.router)
    if runtime.settings.api_docs:
        app.include_router(docs.router)
    app.include_router(console.router)
    return app


def app_from_environment() -> FastAPI:
    """The app of one `huifang serve --workers N` process: settings from the environment the
    parent passed on, the database already migrated by the parent."""
    from huifang.dialer.cli import wire_click_to_call

    runtime = build_runtime(Settings(), migrate=False)
    wire_click_to_call(runtime)
    return create_app(runtime)
