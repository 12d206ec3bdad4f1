"""Who may call what: every /api/v1 endpoint needs a bearer token or a console session."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from dashboard_api.access import Principal, Role
from dashboard_api.console.sessions import ConsoleSession
from dashboard_api.deps import ApiServices, Services

SESSION_COOKIE = "sigap_session"
CSRF_HEADER = "X-CSRF-Token"
# Methods a browser lets any site send with our cookie; they must change nothing.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = "cross-site request refused"

# auto_error off: a missing header gets our 401 with a WWW-Authenticate challenge, not
# FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/tokens")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description=f"The console's session (POST /console/session); writes also need {CSRF_HEADER}",
)
SessionCookie = Annotated[str | None, Depends(_cookie)]


def own_origin(request: Request) -> str:
    """This server's origin as the request reached it: scheme://host[:port] (Host header)."""
    return _normal(request.url.scheme, request.headers.get("host", ""))


def is_own_origin(request: Request, origin: str) -> bool:
    """True when an Origin header names this server."""
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.netloc:  # "null" (sandboxed pages, file:) or garbage
        return False
    return _normal(parts.scheme, parts.netloc) == own_origin(request)


def _normal(scheme: str, netloc: str) -> str:
    scheme, netloc = scheme.lower(), netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):  # browsers leave the default port out
        netloc = netloc.removesuffix(default)
    return f"{scheme}://{netloc}"


def refuse_foreign_origin(request: Request) -> None:
    """403 when the request carries an Origin header that is not this server's."""
    origin = request.headers.get("origin")
    if origin is not None and not is_own_origin(request, origin):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{CROSS_SITE}: Origin {origin!r} is not this server ({own_origin(request)})",
        )


def check_same_site(request: Request, session: ConsoleSession) -> None:
    """403 unless a cookie write carries the session's CSRF token and no foreign Origin."""
    refuse_foreign_origin(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{CROSS_SITE}: a write with the session cookie needs header {CSRF_HEADER} "
            "with the session's csrf_token (from /console/session)",
        )


async def console_session(
    services: ApiServices, secret: str
) -> tuple[ConsoleSession, Principal] | None:
    """The live session behind a cookie and who it acts as, or None.

    The principal comes from the token the session was opened with, through the
    authenticator's cache: a revoked token ends the session (and deletes it).
    """
    store = services.console_sessions()
    if store is None or services.auth is None:
        return None
    session = await store.get(secret)
    if session is None:
        return None
    principal = await services.auth.principal_by_hash(session.token_hash)
    if principal is None:
        await store.end(session)
        return None
    return session, principal


async def authenticated(
    request: Request,
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: SessionCookie,
) -> Principal:
    """The caller, from `Authorization: Bearer <token>` or else the session cookie (401)."""
    if services.auth is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "API authentication is not configured"
        )
    if credentials is None and cookie:
        return await _from_cookie(request, services, cookie)
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this endpoint needs a bearer token (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await services.auth.principal(credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the bearer token is not valid (unknown or revoked)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


async def _from_cookie(request: Request, services: ApiServices, cookie: str) -> Principal:
    found = await console_session(services, cookie)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the console session has ended (signed out, idle too long, or its token was "
            "revoked): sign in again",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session, principal = found
    # The browser sends the cookie with requests that other sites make it send; a write
    # must prove it comes from the console's page, which alone can read the CSRF token.
    if request.method not in SAFE_METHODS:
        check_same_site(request, session)
    return principal


Caller = Annotated[Principal, Depends(authenticated)]


async def maybe_authenticated(
    request: Request,
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: SessionCookie,
) -> Principal | None:
    """The caller if a valid token (or, for a read, session) came with it, else None."""
    if services.auth is None:
        return None
    if credentials is not None:
        return await services.auth.principal(credentials.credentials)
    if cookie and request.method in SAFE_METHODS:
        found = await console_session(services, cookie)
        return None if found is None else found[1]
    return None


MaybeCaller = Annotated[Principal | None, Depends(maybe_authenticated)]


def for_admin(caller: Principal | None, detail: str, public: str) -> str:
    """The detail for an admin, a stable message for everyone else.

    Errors of InfluxDB, the broker or SQL name internal hosts, ports and files, and quote
    third-party text: only an admin (and the log) needs that to fix what is wrong.
    """
    return detail if caller is not None and caller.role is Role.admin else public


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through the given roles (and admin); 403 for the others."""
    allowed = ", ".join(sorted({Role.admin.value, *(r.value for r in roles)}))

    async def check(caller: Caller) -> Principal:
        if not caller.may(*roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {caller.role.value!r} may not do this; it needs one of: {allowed}",
            )
        return caller

    return check


Admin = Annotated[Principal, Depends(require())]
Technician = Annotated[Principal, Depends(require(Role.technician))]
Dispatcher = Annotated[Principal, Depends(require(Role.dispatcher))]
Crew = Annotated[Principal, Depends(require(Role.crew))]

# For a route decorator's `dependencies=`, where the handler does not need the caller.
ADMIN = [Depends(require())]
TECHNICIAN = [Depends(require(Role.technician))]
DISPATCHER = [Depends(require(Role.dispatcher))]
CREW = [Depends(require(Role.crew))]
