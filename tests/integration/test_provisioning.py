"""Broker accounts against a real mosquitto with the dynamic security plugin (no restarts)."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices.provisioning import (
    AccountKind,
    BrokerAccounts,
    BrokerUnavailableError,
    Credentials,
    DynsecAccounts,
)
from tests.integration.conftest import AuthBroker
from tests.unit.test_provisioning import AccountsContract, Harness, Session

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87  # MQTT v5 reason code, in CONNACK and PUBACK
TIMEOUT_S = 10.0


class Probe:
    """One paho client with events to wait on (threads: paho's loop, the test's waits)."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        v5: bool = True,
        client_id: str | None = None,
    ) -> None:
        self.port = port
        protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{uuid.uuid4().hex[:10]}",
            protocol=protocol,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.pubacks: dict[int, ReasonCode] = {}
        self.acked = threading.Condition()
        self.subacked = threading.Event()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.connack = rc
        if rc.is_failure:
            self.client.disconnect()  # no automatic retries: a refusal is the answer
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        # Kicked by the broker: stay down (paho's loop would reconnect after a backoff).
        self.client.disconnect()
        self.disconnected.set()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self.acked:
            self.pubacks[mid] = rc
            self.acked.notify_all()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _m: int, _rc: Any, _p: Any) -> None:
        self.subacked.set()

    def start(self) -> bool:
        """Connect; True when the broker accepted (a refused probe is stopped)."""
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT_S), "no CONNACK"
        assert self.connack is not None
        if self.connack.is_failure:
            self.stop()
            return False
        return True

    def publish(self, topic: str, payload: bytes = b"{}", *, retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code (always success on 3.1.1)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.pubacks, TIMEOUT_S), "no PUBACK"
            return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and wait for the SUBACK."""
        self.subacked.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subacked.wait(TIMEOUT_S), "no SUBACK"

    def wait_message(self, match: Callable[[mqtt.MQTTMessage], bool]) -> list[mqtt.MQTTMessage]:
        """Messages received up to and including the first that matches (fails at the deadline)."""
        seen: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no matching message in {TIMEOUT_S} s; got {[m.topic for m in seen]}")
            seen.append(message)
            if match(message):
                return seen

    def stop(self) -> None:
        """Disconnect and stop paho's thread (it would otherwise reconnect)."""
        self.client.disconnect()
        self.client.loop_stop()


class BrokerSession(Session):
    """A real connection; closed when the broker disconnects it."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def wait_closed(self, timeout_s: float = TIMEOUT_S) -> bool:
        """Wait for paho's on_disconnect."""
        return await asyncio.to_thread(self.probe.disconnected.wait, timeout_s)

    async def close(self) -> None:
        """Stop the client."""
        await asyncio.to_thread(self.probe.stop)


def _can_connect(port: int, username: str, password: str) -> bool:
    probe = Probe(port, username, password)
    if not probe.start():
        return False
    probe.stop()
    return True


def _may_publish(port: int, username: str, password: str, topic: str) -> bool:
    probe = Probe(port, username, password)
    if not probe.start():
        return False
    try:
        return not probe.publish(topic).is_failure
    finally:
        probe.stop()


class BrokerHarness(Harness):
    """DynsecAccounts, judged by a real broker through MQTT v5 reason codes."""

    def __init__(self, broker: AuthBroker, accounts: BrokerAccounts) -> None:
        self.port = broker.service.port
        self.accounts = accounts
        self.service_username = broker.auth.service_username
        self.service_password = broker.auth.service_password
        self.sessions: list[BrokerSession] = []

    async def can_connect(self, username: str, password: str) -> bool:
        """A v5 CONNECT."""
        return await asyncio.to_thread(_can_connect, self.port, username, password)

    async def may_publish(self, username: str, password: str, topic: str) -> bool:
        """A v5 QoS 1 PUBLISH: the PUBACK says 0x87 when the ACL refuses it."""
        return await asyncio.to_thread(_may_publish, self.port, username, password, topic)

    async def open_session(self, username: str, password: str) -> Session:
        """A connected v5 client."""
        probe = Probe(self.port, username, password)
        assert await asyncio.to_thread(probe.start), f"{username} could not connect"
        session = BrokerSession(probe)
        self.sessions.append(session)
        return session


@pytest.fixture
def broker(mosquitto_auth: AuthBroker) -> Iterator[AuthBroker]:
    """The shared broker; after each test, the same process must still be running."""
    yield mosquitto_auth
    process = mosquitto_auth.service.process
    assert process.poll() is None, mosquitto_auth.service.log_tail()
    assert process.pid == mosquitto_auth.pid, "mosquitto was restarted"


@pytest.fixture
async def accounts(broker: AuthBroker) -> AsyncIterator[DynsecAccounts]:
    """DynsecAccounts with the broker's admin account."""
    auth = broker.auth
    async with DynsecAccounts(
        "127.0.0.1",
        broker.service.port,
        auth.admin_username,
        auth.admin_password,
        service_username=auth.service_username,
    ) as accounts:
        await accounts.ensure_roles()
        yield accounts


class TestDynsecAccounts(AccountsContract):
    """The BrokerAccounts contract on mosquitto's dynamic security plugin."""

    @pytest.fixture
    async def harness(self, broker: AuthBroker, accounts: DynsecAccounts) -> AsyncIterator[Harness]:
        """The shared broker, through a real admin connection."""
        harness = BrokerHarness(broker, accounts)
        yield harness
        for session in harness.sessions:
            await session.close()


@pytest.fixture
def service(broker: AuthBroker) -> Iterator[Probe]:
    """Sigap's service account, subscribed to everything under sigap/ (as ingest would be)."""
    probe = Probe(broker.service.port, broker.auth.service_username, broker.auth.service_password)
    assert probe.start()
    probe.subscribe("sigap/#")
    yield probe
    probe.stop()


def device_probe(broker: AuthBroker, creds: Credentials, *, v5: bool = True) -> Probe:
    """A connected client with the credentials."""
    probe = Probe(broker.service.port, creds.username, creds.password, v5=v5)
    assert probe.start(), f"{creds.username} could not connect"
    return probe


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311", "mqtt5"])
def test_anonymous_clients_are_refused(broker: AuthBroker, v5: bool) -> None:
    probe = Probe(broker.service.port, None, None, v5=v5)
    assert not probe.start()
    assert probe.connack is not None and probe.connack.is_failure


async def test_device_reading_reaches_the_service_account(
    broker: AuthBroker, accounts: DynsecAccounts, service: Probe
) -> None:
    device_id = f"fire-{uuid.uuid4().hex[:8]}"
    creds = await accounts.provision_device(device_id)
    device = await asyncio.to_thread(device_probe, broker, creds, v5=False)
    try:
        payload = json.dumps({"temp_c": 31.5}).encode()
        await asyncio.to_thread(device.publish, f"sigap/devices/{device_id}/up", payload)
        await asyncio.to_thread(
            device.publish, f"sigap/devices/{device_id}/status", b"online", retain=True
        )
        got = await asyncio.to_thread(
            service.wait_message, lambda m: m.topic == f"sigap/devices/{device_id}/status"
        )
        assert [(m.topic, m.payload) for m in got if device_id in m.topic] == [
            (f"sigap/devices/{device_id}/up", payload),
            (f"sigap/devices/{device_id}/status", b"online"),
        ]
    finally:
        device.stop()


async def test_publishing_to_another_devices_topic_is_not_delivered(
    broker: AuthBroker, accounts: DynsecAccounts, service: Probe
) -> None:
    mine, victim = (f"fire-{uuid.uuid4().hex[:8]}" for _ in range(2))
    creds = await accounts.provision_device(mine)
    await accounts.provision_device(victim)
    # MQTT 3.1.1: the broker acknowledges and drops it; the publisher cannot tell.
    old = await asyncio.to_thread(device_probe, broker, creds, v5=False)
    try:
        assert not (await asyncio.to_thread(old.publish, f"sigap/devices/{victim}/up")).is_failure
        # One client's messages arrive in order: once its own reading is in, the forged
        # one would have been delivered before it.
        await asyncio.to_thread(old.publish, f"sigap/devices/{mine}/up", b"marker")
        got = await asyncio.to_thread(service.wait_message, lambda m: m.payload == b"marker")
        assert not [m.topic for m in got if victim in m.topic]
    finally:
        old.stop()
    # MQTT 5: the PUBACK says not authorised.
    new = await asyncio.to_thread(device_probe, broker, creds, v5=True)
    try:
        rc = await asyncio.to_thread(new.publish, f"sigap/devices/{victim}/up")
        assert rc.value == NOT_AUTHORIZED
        assert (await asyncio.to_thread(new.publish, f"sigap/devices/{mine}/up")).value == 0
    finally:
        new.stop()


async def test_gateway_publishes_only_its_own_topic(
    broker: AuthBroker, accounts: DynsecAccounts, service: Probe
) -> None:
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    creds = await accounts.provision_gateway(gateway_id)
    gateway = await asyncio.to_thread(device_probe, broker, creds)
    try:
        batch = json.dumps({"readings": [{"device_id": "bin-1", "fill_pct": 40}]}).encode()
        for topic in ("sigap/gateways/other-gw/up", "sigap/devices/bin-1/up"):
            assert (await asyncio.to_thread(gateway.publish, topic)).value == NOT_AUTHORIZED
        own = f"sigap/gateways/{gateway_id}/up"
        assert (await asyncio.to_thread(gateway.publish, own, batch)).value == 0
        got = await asyncio.to_thread(service.wait_message, lambda m: m.topic == own)
        assert got[-1].payload == batch
        assert not [
            m for m in got if m.topic in ("sigap/gateways/other-gw/up", "sigap/devices/bin-1/up")
        ]
    finally:
        gateway.stop()


async def test_service_account_writes_alerts_but_cannot_forge_readings(
    broker: AuthBroker, service: Probe
) -> None:
    assert (await asyncio.to_thread(service.publish, "sigap/alerts/fire/fire-1")).value == 0
    assert (
        await asyncio.to_thread(service.publish, "sigap/devices/fire-1/up")
    ).value == NOT_AUTHORIZED


async def test_connected_device_is_kicked_on_revoke_and_cannot_reconnect(
    broker: AuthBroker, accounts: DynsecAccounts
) -> None:
    device_id = f"fire-{uuid.uuid4().hex[:8]}"
    creds = await accounts.provision_device(device_id)
    device = await asyncio.to_thread(device_probe, broker, creds, v5=False)
    try:
        assert await accounts.revoke(device_id, AccountKind.device)
        assert await asyncio.to_thread(device.disconnected.wait, TIMEOUT_S)
    finally:
        device.stop()
    retry = Probe(broker.service.port, creds.username, creds.password, v5=False)
    assert not await asyncio.to_thread(retry.start)


async def test_broker_stores_only_password_hashes(
    broker: AuthBroker, accounts: DynsecAccounts
) -> None:
    creds = await accounts.provision_device(f"fire-{uuid.uuid4().hex[:8]}")
    # The plugin rewrites its file on every change, before it answers the command.
    text = broker.dynsec_file.read_text()
    entry = next(c for c in json.loads(text)["clients"] if c["username"] == creds.username)
    assert creds.password not in text
    assert entry["iterations"] > 0 and entry["salt"] and entry["password"] != creds.password


async def test_wrong_admin_password_is_reported(broker: AuthBroker) -> None:
    accounts = DynsecAccounts(
        "127.0.0.1", broker.service.port, broker.auth.admin_username, "wrong", timeout_s=5
    )
    with pytest.raises(BrokerUnavailableError):
        await accounts.get("anyone")
    await accounts.aclose()


async def test_service_account_cannot_administer(broker: AuthBroker) -> None:
    # Only the admin role may use $CONTROL: the service account's commands go unanswered.
    accounts = DynsecAccounts(
        "127.0.0.1",
        broker.service.port,
        broker.auth.service_username,
        broker.auth.service_password,
        timeout_s=1,
    )
    with pytest.raises(BrokerUnavailableError):
        await accounts.provision_device(f"fire-{uuid.uuid4().hex[:8]}")
    await accounts.aclose()


async def test_admin_connection_comes_back_after_it_drops(
    broker: AuthBroker, accounts: DynsecAccounts
) -> None:
    assert accounts.connected
    # Another login with the admin's client id: the broker closes our session (takeover)
    # before it answers the intruder's CONNECT.
    auth = broker.auth
    intruder = Probe(
        broker.service.port, auth.admin_username, auth.admin_password, client_id=accounts.client_id
    )
    assert await asyncio.to_thread(intruder.start)
    try:
        creds = await accounts.provision_device(f"fire-{uuid.uuid4().hex[:8]}")
    finally:
        await asyncio.to_thread(intruder.stop)
    assert accounts.connected
    assert await accounts.get(creds.username) is not None
