"""BrokerAccounts contract (run here on InMemoryAccounts, and in tests/integration on mosquitto).

The contract speaks through a Harness: what a device would see (can it connect, may it
publish there, is its open session closed), so both implementations face the same asserts.
"""

from __future__ import annotations

import base64
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

import pytest

from devices.provisioning import (
    SERVICE_ROLE,
    AccountConflictError,
    AccountKind,
    AccountNotFoundError,
    BrokerAccounts,
    Credentials,
    InMemoryAccounts,
    hash_password,
    initial_config,
)
from devices.provisioning.dynsec_config import verify_password, write_initial_config
from devices.provisioning.policy import (
    DEVELOPER_ACLS,
    DEVELOPER_ROLE,
    PUBLISH_SEND,
    SERVICE_ACLS,
    SUBSCRIBE,
    AclRule,
    account_acls,
    allowed,
    check_id,
    kind_of,
)
from sigap import devstack


class Session(ABC):
    """An open MQTT session of one account."""

    @abstractmethod
    async def wait_closed(self, timeout_s: float = 10.0) -> bool:
        """True once the broker has closed the session (False at the deadline)."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect, if still connected."""


class Harness(ABC):
    """An implementation under test and the broker's view of what accounts may do."""

    accounts: BrokerAccounts
    service_username: str
    service_password: str

    @abstractmethod
    async def can_connect(self, username: str, password: str) -> bool:
        """Would the broker accept a CONNECT with these credentials?"""

    @abstractmethod
    async def may_publish(self, username: str, password: str, topic: str) -> bool:
        """Connect and publish (QoS 1): did the broker accept it?"""

    @abstractmethod
    async def open_session(self, username: str, password: str) -> Session:
        """A connected session (fails the test if the broker refuses it)."""


class AccountsContract:
    """What every BrokerAccounts does; subclasses provide the `harness` fixture."""

    @pytest.fixture
    def ids(self) -> str:
        """A fresh id prefix per test, so that tests can share one broker."""
        return f"t{uuid.uuid4().hex[:10]}"

    async def test_device_gets_credentials_for_its_own_topics_only(
        self, harness: Harness, ids: str
    ) -> None:
        device, other = f"{ids}-fire", f"{ids}-other"
        creds = await harness.accounts.provision_device(device)
        assert creds.username == device and creds.kind is AccountKind.device
        assert creds.publish_topics == (
            f"sigap/devices/{device}/up",
            f"sigap/devices/{device}/status",
        )
        assert await harness.can_connect(device, creds.password)
        for topic in creds.publish_topics:
            assert await harness.may_publish(device, creds.password, topic), topic
        for topic in (
            f"sigap/devices/{other}/up",
            f"sigap/devices/{other}/status",
            f"sigap/gateways/{device}/up",
            f"sigap/alerts/fire/{device}",
        ):
            assert not await harness.may_publish(device, creds.password, topic), topic

    async def test_gateway_gets_credentials_for_its_own_topics_only(
        self, harness: Harness, ids: str
    ) -> None:
        gateway = f"{ids}-gw"
        creds = await harness.accounts.provision_gateway(gateway)
        assert creds.kind is AccountKind.gateway
        assert creds.publish_topics == (
            f"sigap/gateways/{gateway}/up",
            f"sigap/gateways/{gateway}/status",
        )
        for topic in creds.publish_topics:
            assert await harness.may_publish(gateway, creds.password, topic), topic
        for topic in (f"sigap/gateways/{ids}-gw2/up", f"sigap/devices/{gateway}/up"):
            assert not await harness.may_publish(gateway, creds.password, topic), topic

    async def test_wrong_password_is_refused(self, harness: Harness, ids: str) -> None:
        creds = await harness.accounts.provision_device(f"{ids}-d")
        assert not await harness.can_connect(creds.username, creds.password + "x")
        assert not await harness.can_connect(f"{ids}-nobody", creds.password)

    async def test_passwords_are_random_and_not_in_repr(self, harness: Harness, ids: str) -> None:
        first = await harness.accounts.provision_device(f"{ids}-a")
        second = await harness.accounts.provision_device(f"{ids}-b")
        assert first.password != second.password
        assert len(first.password) >= 32
        assert first.password not in repr(first)

    async def test_get_and_list(self, harness: Harness, ids: str) -> None:
        device, gateway = f"{ids}-d", f"{ids}-g"
        await harness.accounts.provision_device(device)
        await harness.accounts.provision_gateway(gateway)
        got = await harness.accounts.get(device)
        assert got is not None
        assert (got.username, got.kind, got.enabled) == (device, AccountKind.device, True)
        assert await harness.accounts.get(f"{ids}-missing") is None
        everyone = await harness.accounts.list_accounts()
        names = [a.username for a in everyone]
        assert names == sorted(names)
        assert {device, gateway, harness.service_username} <= set(names)
        devices = await harness.accounts.list_accounts(AccountKind.device)
        assert device in {a.username for a in devices}
        assert all(a.kind is AccountKind.device for a in devices)
        gateways = await harness.accounts.list_accounts(AccountKind.gateway)
        assert [a.username for a in gateways if a.username.startswith(ids)] == [gateway]

    async def test_provisioning_again_rekeys_the_same_account(
        self, harness: Harness, ids: str
    ) -> None:
        device = f"{ids}-d"
        old = await harness.accounts.provision_device(device)
        session = await harness.open_session(device, old.password)
        new = await harness.accounts.provision_device(device)
        assert new.password != old.password
        assert await session.wait_closed()
        assert not await harness.can_connect(device, old.password)
        assert await harness.can_connect(device, new.password)
        listed = [a for a in await harness.accounts.list_accounts() if a.username == device]
        assert len(listed) == 1

    async def test_rotated_password_invalidates_the_old_one(
        self, harness: Harness, ids: str
    ) -> None:
        device = f"{ids}-d"
        old = await harness.accounts.provision_device(device)
        session = await harness.open_session(device, old.password)
        new = await harness.accounts.rotate_password(device)
        assert (new.username, new.kind) == (device, AccountKind.device)
        assert await session.wait_closed()
        assert not await harness.can_connect(device, old.password)
        assert await harness.may_publish(device, new.password, f"sigap/devices/{device}/up")
        with pytest.raises(AccountNotFoundError):
            await harness.accounts.rotate_password(f"{ids}-missing")

    async def test_revoked_device_cannot_connect_and_is_disconnected(
        self, harness: Harness, ids: str
    ) -> None:
        device = f"{ids}-d"
        creds = await harness.accounts.provision_device(device)
        session = await harness.open_session(device, creds.password)
        assert await harness.accounts.revoke(device, AccountKind.device) is True
        assert await session.wait_closed()
        assert not await harness.can_connect(device, creds.password)
        assert await harness.accounts.get(device) is None
        assert await harness.accounts.revoke(device, AccountKind.device) is False
        # Issuing credentials again after a revoke starts a fresh account.
        again = await harness.accounts.provision_device(device)
        assert await harness.may_publish(device, again.password, f"sigap/devices/{device}/up")

    async def test_disabled_account_cannot_connect_until_enabled(
        self, harness: Harness, ids: str
    ) -> None:
        gateway = f"{ids}-g"
        creds = await harness.accounts.provision_gateway(gateway)
        session = await harness.open_session(gateway, creds.password)
        account = await harness.accounts.set_enabled(gateway, False)
        assert (account.enabled, account.kind) == (False, AccountKind.gateway)
        assert await session.wait_closed()
        assert not await harness.can_connect(gateway, creds.password)
        got = await harness.accounts.get(gateway)
        assert got is not None and not got.enabled
        await harness.accounts.set_enabled(gateway, True)
        assert await harness.can_connect(gateway, creds.password)
        with pytest.raises(AccountNotFoundError):
            await harness.accounts.set_enabled(f"{ids}-missing", False)

    async def test_provisioning_re_enables_a_disabled_account(
        self, harness: Harness, ids: str
    ) -> None:
        device = f"{ids}-d"
        await harness.accounts.provision_device(device)
        await harness.accounts.set_enabled(device, False)
        creds = await harness.accounts.provision_device(device)
        assert await harness.can_connect(device, creds.password)

    async def test_service_account_is_off_limits(self, harness: Harness) -> None:
        service = harness.service_username
        with pytest.raises(AccountConflictError):
            await harness.accounts.provision_device(service)
        with pytest.raises(AccountConflictError):
            await harness.accounts.rotate_password(service)
        for kind in (AccountKind.device, AccountKind.gateway):
            with pytest.raises(AccountConflictError):
                await harness.accounts.revoke(service, kind)
        with pytest.raises(AccountConflictError):
            await harness.accounts.set_enabled(service, False)
        assert await harness.can_connect(service, harness.service_password)

    async def test_revoke_touches_only_an_account_of_its_own_kind(
        self, harness: Harness, ids: str
    ) -> None:
        # Devices and gateways share one username space (#22.6): a device revoke of a
        # gateway's name must leave the gateway's login and its session as they are.
        gateway, device = f"{ids}-gw", f"{ids}-dev"
        gw_creds = await harness.accounts.provision_gateway(gateway)
        dev_creds = await harness.accounts.provision_device(device)
        gw_session = await harness.open_session(gateway, gw_creds.password)
        with pytest.raises(AccountConflictError, match="is a gateway account"):
            await harness.accounts.revoke(gateway, AccountKind.device)
        with pytest.raises(AccountConflictError, match="is a device account"):
            await harness.accounts.revoke(device, AccountKind.gateway)
        assert not await gw_session.wait_closed(timeout_s=0.5)
        assert await harness.can_connect(gateway, gw_creds.password)
        assert await harness.can_connect(device, dev_creds.password)
        assert await harness.accounts.revoke(gateway, AccountKind.gateway) is True
        assert await gw_session.wait_closed()
        assert await harness.accounts.revoke(device, AccountKind.device) is True
        await gw_session.close()

    async def test_one_id_is_a_device_or_a_gateway_not_both(
        self, harness: Harness, ids: str
    ) -> None:
        await harness.accounts.provision_gateway(f"{ids}-x")
        with pytest.raises(AccountConflictError):
            await harness.accounts.provision_device(f"{ids}-x")

    @pytest.mark.parametrize("bad", ["", "a/b", "sigap/+", "x#", "with space", "-lead"])
    async def test_ids_that_cannot_be_topic_segments_are_refused(
        self, harness: Harness, bad: str
    ) -> None:
        with pytest.raises(ValueError):
            await harness.accounts.provision_device(bad)

    async def test_ensure_roles_is_idempotent(self, harness: Harness) -> None:
        await harness.accounts.ensure_roles()
        await harness.accounts.ensure_roles()
        service = await harness.accounts.get(harness.service_username)
        assert service is not None and SERVICE_ROLE in service.roles
        assert service.kind is AccountKind.other
        assert await harness.can_connect(harness.service_username, harness.service_password)


# -- the in-memory implementation ------------------------------------------------------


class MemorySession(Session):
    """A session counted by InMemoryAccounts; closed when the account is kicked."""

    def __init__(self, accounts: InMemoryAccounts, username: str) -> None:
        self.accounts, self.username = accounts, username

    async def wait_closed(self, timeout_s: float = 10.0) -> bool:
        """Closed as soon as the account's sessions were dropped (no waiting in memory)."""
        return self.accounts.sessions(self.username) == 0

    async def close(self) -> None:
        """Nothing to close in memory."""


class MemoryHarness(Harness):
    """InMemoryAccounts answering the broker's questions itself."""

    def __init__(self) -> None:
        self.service_username, self.service_password = "sigap", "service-secret"
        self.memory = InMemoryAccounts(
            service_username=self.service_username, service_password=self.service_password
        )
        self.accounts = self.memory

    async def can_connect(self, username: str, password: str) -> bool:
        """InMemoryAccounts.authenticate."""
        return self.memory.authenticate(username, password)

    async def may_publish(self, username: str, password: str, topic: str) -> bool:
        """Authenticated and allowed by the account's roles."""
        return self.memory.authenticate(username, password) and self.memory.may_publish(
            username, topic
        )

    async def open_session(self, username: str, password: str) -> Session:
        """Count a session on the account."""
        assert self.memory.connect(username, password)
        return MemorySession(self.memory, username)


class TestInMemoryAccounts(AccountsContract):
    """The contract on InMemoryAccounts."""

    @pytest.fixture
    def harness(self) -> Harness:
        """A fresh in-memory account store per test."""
        return MemoryHarness()

    def test_is_a_broker_accounts(self) -> None:
        assert isinstance(InMemoryAccounts(), BrokerAccounts)

    async def test_passwords_are_stored_hashed(self) -> None:
        memory = InMemoryAccounts()
        creds = await memory.provision_device("fire-1")
        assert creds.password not in repr(vars(memory))
        assert memory.authenticate("fire-1", creds.password)


# -- policy and the plugin's file format -------------------------------------------------


def test_password_hash_matches_mosquitto() -> None:
    # Written by `mosquitto_ctrl dynsec init ds.json admin s3cret` (mosquitto 2.0.11).
    entry: dict[str, str | int] = {
        "password": "oGE2OAWqstQ7FlhqBQLajv5SpnPKZ+ElyXTrvnjs5ZGw1Q2OeCcaEoim0bcRBCsxqAe4jZ66"
        "RaEuxVuDNVRWZA==",
        "salt": "KDH+axsOuMPnvdKX",
        "iterations": 101,
    }
    assert verify_password("s3cret", entry)
    assert not verify_password("s3cret!", entry)
    assert hash_password("s3cret", salt=base64.b64decode(str(entry["salt"]))) == entry
    fresh = hash_password("x")
    assert len(base64.b64decode(str(fresh["salt"]))) == 12
    assert fresh != hash_password("x")  # salted


def test_initial_config_has_admin_and_service_accounts(tmp_path: Path) -> None:
    config = initial_config(
        admin_username="adm", admin_password="a", service_username="svc", service_password="s"
    )
    clients = {c["username"]: c for c in config["clients"]}
    assert set(clients) == {"adm", "svc"}
    assert verify_password("s", clients["svc"])
    assert clients["svc"]["roles"] == [{"rolename": SERVICE_ROLE}]
    assert config["defaultACLAccess"]["publishClientSend"] is False
    with pytest.raises(ValueError):
        initial_config(
            admin_username="x", admin_password="a", service_username="x", service_password="s"
        )
    path = tmp_path / "sub" / "dynamic-security.json"
    write_initial_config(
        path, admin_username="adm", admin_password="a", service_username="svc", service_password="s"
    )
    assert path.stat().st_mode & 0o777 == 0o600
    assert '"s"' not in path.read_text()


def test_service_acls() -> None:
    assert allowed(SERVICE_ACLS, SUBSCRIBE, "sigap/devices/+/up")
    assert allowed(SERVICE_ACLS, SUBSCRIBE, "v3/+/devices/+/up")
    assert allowed(SERVICE_ACLS, SUBSCRIBE, "application/+/device/+/event/up")
    assert not allowed(SERVICE_ACLS, SUBSCRIBE, "#")
    assert not allowed(SERVICE_ACLS, SUBSCRIBE, "$CONTROL/dynamic-security/#")
    assert allowed(SERVICE_ACLS, PUBLISH_SEND, "sigap/alerts/fire/fire-1")
    assert not allowed(SERVICE_ACLS, PUBLISH_SEND, "sigap/devices/fire-1/up")
    # Several ingest workers: a share group, and readings forwarded between workers.
    assert allowed(SERVICE_ACLS, SUBSCRIBE, "$share/sigap-ingest/sigap/devices/+/up")
    assert allowed(SERVICE_ACLS, SUBSCRIBE, "$share/g/v3/+/devices/+/up")
    assert not allowed(SERVICE_ACLS, SUBSCRIBE, "$share/g/#")
    assert allowed(SERVICE_ACLS, PUBLISH_SEND, "sigap/internal/ingest/1")
    assert not allowed(DEVELOPER_ACLS, PUBLISH_SEND, "sigap/internal/ingest/1")
    assert not allowed(account_acls(AccountKind.device, "fire-1"), PUBLISH_SEND, "sigap/internal/x")


def test_ids_and_kinds() -> None:
    assert check_id("fire-001.b:2_x") == "fire-001.b:2_x"
    assert kind_of("a", ("device:a",)) is AccountKind.device
    assert kind_of("a", ("gateway:a",)) is AccountKind.gateway
    assert kind_of("a", ("device:b",)) is AccountKind.other  # someone else's role
    assert Credentials("g", "pw", AccountKind.gateway).publish_topics[0] == "sigap/gateways/g/up"


# -- devstack's broker with authentication -------------------------------------------------


def test_mosquitto_config_with_auth_turns_anonymous_off(tmp_path: Path) -> None:
    plugin, dynsec = tmp_path / "dynsec.so", tmp_path / "dynamic-security.json"
    text = devstack.mosquitto_config(1234, tmp_path, plugin=plugin, dynsec_file=dynsec)
    lines = text.splitlines()
    assert "allow_anonymous false" in lines and "allow_anonymous true" not in lines
    assert f"plugin {plugin}" in lines and f"plugin_opt_config_file {dynsec}" in lines
    # The template's own plugin lines (Debian x86-64 paths) are replaced, not repeated.
    assert [line for line in lines if line.startswith("plugin ")] == [f"plugin {plugin}"]
    # The repo's file itself allows no anonymous access.
    repo = (devstack.REPO / "mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in repo and "allow_anonymous true" not in repo


def test_the_developer_account_publishes_as_any_device_and_reads_only_alerts() -> None:
    config = initial_config(
        admin_username="a",
        admin_password="pa",
        service_username="s",
        service_password="ps",
        developer=("d", "pd"),
    )
    roles = {r["rolename"]: r for r in config["roles"]}
    acls = tuple(AclRule(**rule) for rule in roles[DEVELOPER_ROLE]["acls"])
    assert allowed(acls, PUBLISH_SEND, "sigap/devices/fire-9/up")
    assert allowed(acls, PUBLISH_SEND, "v3/app@t/devices/dev1/up")
    assert not allowed(acls, PUBLISH_SEND, "sigap/alerts/fire/fire-9")
    assert allowed(acls, SUBSCRIBE, "sigap/alerts/#")
    assert not allowed(acls, SUBSCRIBE, "sigap/devices/+/up")
    without = initial_config(
        admin_username="a", admin_password="pa", service_username="s", service_password="ps"
    )
    assert DEVELOPER_ROLE not in {r["rolename"] for r in without["roles"]}


def test_dynsec_plugin_path(tmp_path: Path) -> None:
    with pytest.raises(devstack.StackError):
        devstack.dynsec_plugin_path(tmp_path / "missing.so")
    so = tmp_path / "mosquitto_dynamic_security.so"
    so.touch()
    assert devstack.dynsec_plugin_path(so) == so


def test_broker_auth_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from sigap.settings import MqttSettings

    with pytest.raises(devstack.StackError):
        devstack.broker_auth(MqttSettings())
    for name, value in {
        "SIGAP_MQTT_ADMIN_USERNAME": "adm",
        "SIGAP_MQTT_ADMIN_PASSWORD": "a",
        "SIGAP_MQTT_USERNAME": "svc",
        "SIGAP_MQTT_PASSWORD": "s",
    }.items():
        monkeypatch.setenv(name, value)
    settings = MqttSettings()
    auth = devstack.broker_auth(settings)
    assert (auth.admin_username, auth.service_username, auth.service_password) == (
        "adm",
        "svc",
        "s",
    )
    assert "'a'" not in repr(settings) and "'s'" not in repr(auth)
