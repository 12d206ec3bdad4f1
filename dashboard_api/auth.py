"""Who may call what: every /api/v1 endpoint needs a bearer token; writes need a role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dashboard_api.access import Principal, Role
from dashboard_api.deps import Services

# auto_error off: a missing header gets our 401 with a WWW-Authenticate challenge, not
# FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/tokens")


async def authenticated(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from `Authorization: Bearer <token>`; 401 without a valid token."""
    if services.auth is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "API authentication is not configured"
        )
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


Caller = Annotated[Principal, Depends(authenticated)]


async def maybe_authenticated(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller if a valid token came with the request, else None (never an error)."""
    if services.auth is None or credentials is None:
        return None
    return await services.auth.principal(credentials.credentials)


MaybeCaller = Annotated[Principal | None, Depends(maybe_authenticated)]


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
