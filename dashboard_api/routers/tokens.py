"""API tokens: issue (shown once), list, revoke. Admin only."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from dashboard_api.access import Authenticator, TokenCreate, TokenIssued, TokenPublic
from dashboard_api.auth import Admin
from dashboard_api.deps import Services
from dashboard_api.inputs import JSON_CHECKED, RowId

router = APIRouter(prefix="/tokens", tags=["access"], dependencies=JSON_CHECKED)


def _auth(services: Services) -> Authenticator:
    if services.auth is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "tokens are not available")
    return services.auth


@router.post("", status_code=status.HTTP_201_CREATED)
async def issue_token(body: TokenCreate, services: Services, caller: Admin) -> TokenIssued:
    """Issue a token with a role; its secret is in this answer only (store it now)."""
    return await _auth(services).store.issue(body, by=caller.name)


@router.get("", responses={403: {"description": "Only an admin sees the tokens."}})
async def list_tokens(services: Services, _caller: Admin) -> list[TokenPublic]:
    """Every token, newest first (secrets are never shown again)."""
    return await _auth(services).store.list()


@router.delete("/{token_id}")
async def revoke_token(token_id: RowId, services: Services, _caller: Admin) -> TokenPublic:
    """Revoke a token; it stops working at once here, within seconds elsewhere."""
    auth = _auth(services)
    revoked = await auth.store.revoke(token_id)
    if revoked is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"token {token_id} not found")
    auth.forget()
    return revoked
