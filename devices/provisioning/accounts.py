"""The BrokerAccounts interface: MQTT accounts for devices and gateways, and its errors."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from devices.provisioning.policy import AccountKind, publish_topics


@dataclass(frozen=True, slots=True)
class Credentials:
    """A freshly issued username and password: show them once, Sigap keeps no copy."""

    username: str
    password: str = field(repr=False)
    kind: AccountKind

    @property
    def publish_topics(self) -> tuple[str, ...]:
        """The topics these credentials may publish to."""
        return publish_topics(self.kind, self.username)


@dataclass(frozen=True, slots=True)
class Account:
    """A broker account as the broker knows it (never with a password)."""

    username: str
    kind: AccountKind
    enabled: bool
    roles: tuple[str, ...] = ()


class ProvisioningError(Exception):
    """Base of the provisioning errors."""


class AccountNotFoundError(ProvisioningError):
    """No Sigap-managed account with this username."""

    def __init__(self, username: str) -> None:
        super().__init__(f"no broker account {username!r}")
        self.username = username


class AccountConflictError(ProvisioningError):
    """The username is taken by an account of another kind, or reserved for Sigap itself."""

    def __init__(self, username: str, detail: str) -> None:
        super().__init__(f"broker account {username!r}: {detail}")
        self.username = username
        self.detail = detail


class BrokerUnavailableError(ProvisioningError):
    """The broker (or its dynamic security plugin) did not answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"broker accounts unavailable: {reason}")
        self.reason = reason


class BrokerCommandError(ProvisioningError):
    """The dynamic security plugin refused a command."""

    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"dynamic security {command}: {error}")
        self.command = command
        self.error = error


def new_password() -> str:
    """A random password: 192 bits, URL-safe so that it survives device config files."""
    return secrets.token_urlsafe(24)


@runtime_checkable
class BrokerAccounts(Protocol):
    """Per-device and per-gateway MQTT accounts, changed on a running broker."""

    async def ensure_roles(self) -> None:
        """Create (or reset to the current policy) the shared roles, e.g. sigap-service."""
        ...

    async def provision_device(self, device_id: str) -> Credentials:
        """Create the device's account, or give an existing one a new password (and enable it)."""
        ...

    async def provision_gateway(self, gateway_id: str) -> Credentials:
        """Create the gateway's account, or give an existing one a new password (and enable it)."""
        ...

    async def rotate_password(self, username: str) -> Credentials:
        """A new password for a device or gateway account; sessions on the old one are closed."""
        ...

    async def set_enabled(self, username: str, enabled: bool) -> Account:
        """Suspend (closing its sessions) or resume a device or gateway account."""
        ...

    async def revoke(self, username: str, kind: AccountKind) -> bool:
        """Delete the account if it is one of this kind, closing its sessions; False if none.

        The kind is required because devices and gateways share one username space: a
        device revoke must never delete a gateway's login of the same name (or the other
        way round). An account of another kind raises AccountConflictError.
        """
        ...

    async def get(self, username: str) -> Account | None:
        """The account, or None."""
        ...

    async def list_accounts(self, kind: AccountKind | None = None) -> list[Account]:
        """All accounts (of one kind), sorted by username."""
        ...
