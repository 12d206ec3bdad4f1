"""BrokerAccounts in memory, for fast tests: same policy, same errors, no broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devices.provisioning.accounts import (
    Account,
    AccountConflictError,
    AccountNotFoundError,
    Credentials,
    new_password,
)
from devices.provisioning.dynsec_config import hash_password, verify_password
from devices.provisioning.policy import (
    ADMIN_ACLS,
    ADMIN_ROLE,
    PUBLISH_SEND,
    SERVICE_ACLS,
    SERVICE_ROLE,
    SUBSCRIBE,
    AccountKind,
    AclRule,
    account_acls,
    allowed,
    check_id,
    kind_of,
    other_kind,
    role_name,
)


@dataclass
class _Client:
    roles: tuple[str, ...]
    password: dict[str, Any]  # stored hashed, like the plugin
    enabled: bool = True
    sessions: int = field(default=0)  # "connected" sessions, closed on revoke/rotate/disable


class InMemoryAccounts:
    """A BrokerAccounts that also answers the broker's questions (authenticate, may_publish)."""

    def __init__(
        self,
        *,
        admin_username: str = "sigap-admin",
        admin_password: str = "admin",
        service_username: str = "sigap",
        service_password: str = "sigap",
    ) -> None:
        self._roles: dict[str, tuple[AclRule, ...]] = {
            ADMIN_ROLE: ADMIN_ACLS,
            SERVICE_ROLE: SERVICE_ACLS,
        }
        self._clients: dict[str, _Client] = {
            admin_username: _Client((ADMIN_ROLE,), hash_password(admin_password)),
            service_username: _Client((SERVICE_ROLE,), hash_password(service_password)),
        }
        self._reserved = frozenset((admin_username, service_username))
        self.kicked: list[str] = []  # usernames whose sessions were closed, in order

    # -- BrokerAccounts ------------------------------------------------------------------

    async def ensure_roles(self) -> None:
        """Reset the shared roles to the current policy."""
        self._roles[SERVICE_ROLE] = SERVICE_ACLS

    async def provision_device(self, device_id: str) -> Credentials:
        """Create the device's account, or give an existing one a new password (and enable it)."""
        return self._provision(AccountKind.device, device_id)

    async def provision_gateway(self, gateway_id: str) -> Credentials:
        """Create the gateway's account, or give an existing one a new password (and enable it)."""
        return self._provision(AccountKind.gateway, gateway_id)

    async def rotate_password(self, username: str) -> Credentials:
        """A new password for a device or gateway account; sessions on the old one are closed."""
        client, kind = self._managed(username)
        password = new_password()
        client.password = hash_password(password)
        self._kick(username)
        return Credentials(username, password, kind)

    async def set_enabled(self, username: str, enabled: bool) -> Account:
        """Suspend (closing its sessions) or resume a device or gateway account."""
        client, kind = self._managed(username)
        if client.enabled and not enabled:
            self._kick(username)
        client.enabled = enabled
        return Account(username, kind, enabled, client.roles)

    async def revoke(self, username: str, kind: AccountKind) -> bool:
        """Delete the account if it is one of this kind, closing its sessions; False if none."""
        try:
            client, found = self._managed(username)
        except AccountNotFoundError:
            return False
        if found is not kind:
            raise AccountConflictError(username, other_kind(found, kind))
        self._kick(username)
        del self._clients[username]
        for role in client.roles:
            self._roles.pop(role, None)
        return True

    async def get(self, username: str) -> Account | None:
        """The account, or None."""
        client = self._clients.get(username)
        if client is None:
            return None
        return Account(username, kind_of(username, client.roles), client.enabled, client.roles)

    async def list_accounts(self, kind: AccountKind | None = None) -> list[Account]:
        """All accounts (of one kind), sorted by username."""
        accounts = [await self.get(name) for name in sorted(self._clients)]
        return [a for a in accounts if a is not None and (kind is None or a.kind is kind)]

    # -- what the broker would decide ----------------------------------------------------

    def authenticate(self, username: str, password: str) -> bool:
        """Would the broker accept a CONNECT with these credentials?"""
        client = self._clients.get(username)
        return client is not None and client.enabled and verify_password(password, client.password)

    def connect(self, username: str, password: str) -> bool:
        """authenticate(), and count a session that revoke/rotate/disable will close."""
        if not self.authenticate(username, password):
            return False
        self._clients[username].sessions += 1
        return True

    def sessions(self, username: str) -> int:
        """Open sessions of the account (0 when it does not exist)."""
        client = self._clients.get(username)
        return 0 if client is None else client.sessions

    def may_publish(self, username: str, topic: str) -> bool:
        """Would the broker accept a PUBLISH from this account to this topic?"""
        return self._allowed(username, PUBLISH_SEND, topic)

    def may_subscribe(self, username: str, topic_filter: str) -> bool:
        """Would the broker accept this SUBSCRIBE from this account?"""
        return self._allowed(username, SUBSCRIBE, topic_filter)

    # -- internals -----------------------------------------------------------------------

    def _allowed(self, username: str, acltype: str, topic: str) -> bool:
        client = self._clients.get(username)
        if client is None or not client.enabled:
            return False
        acls = tuple(rule for role in client.roles for rule in self._roles.get(role, ()))
        return allowed(acls, acltype, topic)

    def _provision(self, kind: AccountKind, account_id: str) -> Credentials:
        check_id(account_id)
        if account_id in self._reserved:
            raise AccountConflictError(account_id, "reserved for Sigap itself")
        role = role_name(kind, account_id)
        existing = self._clients.get(account_id)
        if existing is not None and role not in existing.roles:
            raise AccountConflictError(
                account_id, f"exists as a {kind_of(account_id, existing.roles)} account"
            )
        self._roles[role] = account_acls(kind, account_id)
        password = new_password()
        if existing is None:
            self._clients[account_id] = _Client((role,), hash_password(password))
        else:
            existing.password = hash_password(password)
            existing.enabled = True
            self._kick(account_id)
        return Credentials(account_id, password, kind)

    def _managed(self, username: str) -> tuple[_Client, AccountKind]:
        if username in self._reserved:  # as DynsecAccounts says it
            raise AccountConflictError(username, "reserved for Sigap itself")
        client = self._clients.get(username)
        if client is None:
            raise AccountNotFoundError(username)
        kind = kind_of(username, client.roles)
        if kind is AccountKind.other:
            raise AccountConflictError(username, "not a device or gateway account")
        return client, kind

    def _kick(self, username: str) -> None:
        client = self._clients.get(username)
        if client is not None and client.sessions:
            client.sessions = 0
            self.kicked.append(username)
