"""/console/session: the browser console signs in with an API token and gets a cookie.

The token is sent once; the browser keeps only an HttpOnly cookie (which scripts cannot
read) naming a server-side session, and a CSRF token that the page sends on writes.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from dashboard_api.access import Authenticator, Principal, Role, hash_token
from dashboard_api.auth import (
    SESSION_COOKIE,
    SessionCookie,
    check_same_site,
    console_session,
    refuse_foreign_origin,
)
from dashboard_api.console.sessions import ConsoleSession, SessionStore
from dashboard_api.deps import ApiServices, Services
from dashboard_api.inputs import JSON_CHECKED

router = APIRouter(prefix="/console", tags=["console"], dependencies=JSON_CHECKED)


class SignIn(BaseModel):
    """A sign-in: the API token, sent this once."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=1000, description="a token from POST /tokens")


class TileLayer(BaseModel):
    """The map's tile layer (SIGAP_CONSOLE_TILE_URL and its attribution)."""

    url: str = Field(description="XYZ template with {z}, {x} and {y}")
    attribution: str


class SessionInfo(BaseModel):
    """A console session: who it acts as, and the token its writes must carry."""

    name: str
    role: Role
    csrf_token: str = Field(description="send it as X-CSRF-Token on every write")
    expires_at: datetime = Field(description="when it ends unless used (slid forward by use)")
    tiles: TileLayer | None = Field(
        default=None, description="the map's tile layer; none: a plain background"
    )


def _access(services: Services) -> tuple[SessionStore, Authenticator]:
    store = services.console_sessions()
    if store is None or services.auth is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "API authentication is not configured"
        )
    return store, services.auth


def _info(services: ApiServices, session: ConsoleSession, principal: Principal) -> SessionInfo:
    tiles = services.map_tiles
    return SessionInfo(
        name=principal.name,
        role=principal.role,
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
        tiles=None if tiles is None else TileLayer(url=tiles.url, attribution=tiles.attribution),
    )


def _cookie(request: Request, value: str, *, clear: bool = False) -> str:
    """A Set-Cookie value for the session cookie (written out: SameSite=Strict exactly)."""
    parts = [f"{SESSION_COOKIE}={value}", "HttpOnly", "SameSite=Strict", "Path=/"]
    if clear:
        parts += ["Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
    if request.url.scheme == "https":
        parts.append("Secure")
    return "; ".join(parts)


def _no_store(response: Response) -> None:
    # The answers carry the CSRF token: no cache keeps them.
    response.headers["Cache-Control"] = "no-store"


@router.post(
    "/session",
    # A dependency, so that it answers before the body is validated: login CSRF (another
    # site signing the browser in under the attacker's token) is refused whatever it sends.
    dependencies=[Depends(refuse_foreign_origin)],
    responses={
        401: {"description": "unknown or revoked token"},
        403: {"description": "cross-site request refused (a foreign Origin)"},
    },
)
async def sign_in(
    body: SignIn, request: Request, response: Response, services: Services, cookie: SessionCookie
) -> SessionInfo:
    """Sign in with an API token: sets the session cookie and returns the CSRF token."""
    store, auth = _access(services)
    principal = await auth.principal(body.token)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "the token is not valid (unknown or revoked)"
        )
    if cookie:  # signing in again (or as someone else): the old session goes
        previous = await store.get(cookie, slide=False)
        if previous is not None:
            await store.end(previous)
    secret, session = await store.open(hash_token(body.token))
    response.headers.append("Set-Cookie", _cookie(request, secret))
    _no_store(response)
    return _info(services, session, principal)


@router.get("/session", responses={401: {"description": "no valid session"}})
async def current_session(
    response: Response, services: Services, cookie: SessionCookie
) -> SessionInfo:
    """The cookie's session (who it acts as, its CSRF token); using it slides its expiry."""
    found = None if not cookie else await console_session(services, cookie)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "no console session: sign in with POST /console/session",
            headers={"WWW-Authenticate": "Bearer"},
        )
    _no_store(response)
    return _info(services, *found)


@router.delete(
    "/session",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "cross-site request refused (no or wrong X-CSRF-Token)"}},
)
async def sign_out(request: Request, services: Services, cookie: SessionCookie) -> Response:
    """Sign out: deletes the session on the server (needs X-CSRF-Token) and the cookie."""
    store = services.console_sessions()
    if cookie and store is not None:
        session = await store.get(cookie, slide=False)
        if session is not None:
            check_same_site(request, session)
            await store.end(session)
    # Without a live session there is nothing to protect: the answer only clears the cookie.
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.headers.append("Set-Cookie", _cookie(request, "", clear=True))
    return response
