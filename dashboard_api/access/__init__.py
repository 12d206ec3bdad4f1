"""API access: bearer tokens with a role (admin, technician, dispatcher, crew)."""

from dashboard_api.access.tokens import (
    ADMIN_TOKEN_NAME,
    Authenticator,
    Principal,
    Role,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    TokenStore,
    hash_token,
)

__all__ = [
    "ADMIN_TOKEN_NAME",
    "Authenticator",
    "Principal",
    "Role",
    "TokenCreate",
    "TokenIssued",
    "TokenPublic",
    "TokenStore",
    "hash_token",
]
