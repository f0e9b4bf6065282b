"""Swagger UI at `/docs`, only when `api_docs` is on (development): it loads its script and
styles from a CDN and starts with an inline script, so its page carries its own, looser
Content-Security-Policy. `/openapi.json` is always served; any OpenAPI viewer reads it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' {CDN} 'unsafe-inline'; style-src 'self' {CDN}; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="Huifang (回访) API")
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page
