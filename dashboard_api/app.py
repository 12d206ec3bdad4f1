"""The FastAPI application: REST under /api/v1, the console at /, health and metrics."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Scope

from dashboard_api.auth import authenticated
from dashboard_api.deps import ApiServices
from dashboard_api.limits import (
    BodyLimits,
    BodySizeLimit,
    short_http_error_handler,
    validation_error_handler,
)
from dashboard_api.openapi import document_refusals
from dashboard_api.routers import (
    alerts,
    bins,
    cap,
    console,
    credentials,
    devices,
    gateways,
    haze,
    health,
    incidents,
    ingest,
    profiles,
    routes,
    stations,
    tokens,
    webhooks,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

# The console's page and assets, installed with the package (pyproject package-data).
CONSOLE_STATIC = Path(__file__).resolve().parent / "console" / "static"
# The page is the console's entry point: always revalidated, so an upgrade shows at once,
# and never framed by another site (clickjacking of the alert buttons).
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


class ConsoleStatic(StaticFiles):
    """The console's assets, revalidated on each use (ETag), like the page that loads them."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, with `Cache-Control: no-cache` (a 304 when it has not changed)."""
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    async def check_config(self) -> None:
        """A 404, not a 500, on an installation without the console's files."""
        try:
            await super().check_config()
        except RuntimeError:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, "the console is not installed here"
            ) from None


async def console_page() -> FileResponse:
    """The browser console (dashboard_api/console/static/index.html)."""
    page = CONSOLE_STATIC / "index.html"
    if not page.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "the console is not installed here (dashboard_api/console/static/index.html is "
            "missing); the API is under /api/v1, its documentation at /docs",
        )
    return FileResponse(page, media_type="text/html", headers=_PAGE_HEADERS)


async def api_docs() -> HTMLResponse:
    """Swagger UI for the OpenAPI document, from Sigap's own vendored copy (no CDN)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Sigap API",
        swagger_js_url="/console/static/vendor/swagger-ui-dist/swagger-ui-bundle.js",
        swagger_css_url="/console/static/vendor/swagger-ui-dist/swagger-ui.css",
        swagger_favicon_url="/console/static/icons/sigap.svg",
    )


def create_app(
    lifespan: Lifespan | None = None,
    services: ApiServices | None = None,
    *,
    api: bool = True,
    limits: BodyLimits | None = None,
) -> FastAPI:
    """Build the app; the lifespan (from the composition root) attaches `app.state.services`.

    `api=False` is an ingest worker's app: /healthz, /readyz and /metrics only. `limits`
    are the request body limits (SIGAP_API_MAX_BODY_BYTES, SIGAP_API_MAX_IMPORT_BYTES).
    """
    app = FastAPI(
        title="Sigap",
        summary="Fire and waste-bin alerts for Kotawaringin Timur",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc load their scripts from a CDN; a fire post may
        # have no internet, so /docs is served below from the vendored Swagger UI.
        docs_url=None,
        redoc_url=None,
    )

    def openapi() -> dict[str, Any]:
        # FastAPI's document (cached by FastAPI) with the refusals every operation can give.
        return document_refusals(FastAPI.openapi(app))

    app.openapi = openapi  # type: ignore[method-assign]
    if services is not None:
        app.state.services = services
    # Every body is counted before anything parses it (issue #22: a 20 MB JSON body held
    # the event loop for seconds), and no 4xx repeats more than a prefix of the input.
    app.add_middleware(BodySizeLimit, limits=limits or BodyLimits())
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, short_http_error_handler)
    app.include_router(health.router)
    if not api:
        return app
    # Every /api/v1 endpoint needs a bearer token (any role may read); writes check
    # their role on top. /healthz, /readyz and /metrics stay open for probes and scrapers.
    v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(authenticated)])
    v1.include_router(devices.router)
    v1.include_router(gateways.router)
    v1.include_router(profiles.router)
    v1.include_router(credentials.router)
    v1.include_router(cap.router)  # before alerts: /alerts/cap is not an alert id
    v1.include_router(alerts.router)
    v1.include_router(incidents.router)
    v1.include_router(bins.router)
    v1.include_router(haze.router)
    v1.include_router(ingest.router)
    v1.include_router(stations.router)
    v1.include_router(routes.router)
    v1.include_router(webhooks.router)
    v1.include_router(tokens.router)
    app.include_router(v1)
    # The console: its page, its assets, and its sign-in (a cookie that /api/v1 accepts).
    app.include_router(console.router)
    app.add_api_route("/", console_page, methods=["GET"], include_in_schema=False)
    # The console's files compress 3-4x (a fire post's link may be slow); the API and its
    # event stream are left as they are.
    app.mount(
        "/console/static",
        GZipMiddleware(ConsoleStatic(directory=CONSOLE_STATIC, check_dir=False), minimum_size=1024),
    )
    app.add_api_route("/docs", api_docs, methods=["GET"], include_in_schema=False)
    return app
