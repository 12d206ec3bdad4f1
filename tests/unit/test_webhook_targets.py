"""Where webhooks may post (issue #22, "webhooks reach anywhere"): public addresses only,
at registration and again at every connection, unless allowlisted; no response body kept.

Receivers are real HTTP servers on 127.0.0.1; host names resolve through a stub (`Names`),
so that nothing here touches DNS or the internet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import create_engine, pool, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.egress import (
    MAX_ERROR_CHARS,
    EgressPolicy,
    EgressRefused,
    UnresolvedHost,
    forbidden_reason,
    http_error,
    pinned_client,
    transport_error,
)
from dispatch.webhooks import WebhookCreate, WebhookOutbox, WebhookSubscriberRow
from sigap import migrations
from sigap.settings import DispatchSettings
from tests.unit.conftest import ADMIN_HEADERS, api_client, api_services
from tests.unit.test_access import issue
from tests.unit.test_webhooks import (
    LOOPBACK,
    SECRET,
    T0,
    Names,
    Receiver,
    changes_for,
    closed_port_url,
    enqueue,
    subscribe,
)

PUBLIC = "93.184.215.14"  # registered, never connected to: no test reaches the internet
ALLOW_HINT = "unless SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS lists it"


@pytest.fixture
def names() -> Names:
    return Names({"hooks.partner.example": [PUBLIC], "localhost": ["127.0.0.1", "::1"]})


async def make_outbox(
    sessions: async_sessionmaker[AsyncSession], names: Names, *allow: str
) -> WebhookOutbox:
    box = WebhookOutbox(sessions, max_attempts=5, policy=EgressPolicy(allow, resolver=names))
    await box.load()
    return box


@pytest.fixture
async def strict(sessions: async_sessionmaker[AsyncSession], names: Names) -> WebhookOutbox:
    """An outbox as shipped: no allowlist."""
    return await make_outbox(sessions, names)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def stored_subscriber(sessions: async_sessionmaker[AsyncSession], url: str) -> int:
    """A subscriber written without the checks: from before them, or by hand in SQL."""
    async with sessions() as session, session.begin():
        row = WebhookSubscriberRow(url=url, secret=SECRET, active=True, created_at=T0)
        session.add(row)
        await session.flush()
        return row.id


def failed_deliveries() -> float:
    found = REGISTRY.get_sample_value("sigap_webhook_deliveries_total", {"result": "failed"})
    return found or 0.0


# --- registration ----------------------------------------------------------------------------

# Every form the probe registered (all answered 201 then), and what the 422 must say.
REFUSED: list[tuple[str, list[str]]] = [
    ("http://169.254.169.254/latest/meta-data/", ["'169.254.169.254'", "link-local"]),
    ("http://10.0.0.1/", ["'10.0.0.1'", "private"]),
    ("http://[::ffff:169.254.169.254]/", ["is 169.254.169.254", "link-local"]),
    ("http://2852039166/", ["'2852039166' is 169.254.169.254", "link-local"]),
    ("http://127.1/", ["'127.1' is 127.0.0.1", "loopback"]),
    ("http://localhost/", ["'localhost' resolves to 127.0.0.1", "loopback"]),
    ("http://127.0.0.1\\@169.254.169.254/", ["backslashes"]),
    ("http://user:pw@example.com/", ["user name or password"]),
    ("http://user@example.com/", ["user name or password"]),
    ("http://0.0.0.0/", ["'0.0.0.0'", "unspecified"]),
    ("http://[::1]/", ["'::1'", "loopback"]),
    ("http://[fe80::1]/", ["'fe80::1'", "link-local"]),
    ("http://224.0.0.1/", ["'224.0.0.1'", "multicast"]),
    ("http://100.64.0.1/", ["'100.64.0.1'", "carrier-grade NAT"]),
    ("http://[fc00::1]/", ["'fc00::1'", "unique-local"]),
    ("http://0x7f.0.0.1/", ["'0x7f.0.0.1' is 127.0.0.1", "loopback"]),
    ("http://0177.0.0.1/", ["url is not valid"]),  # httpx reads no octal; nor do we
    ("http://0/", ["is 0.0.0.0", "unspecified"]),
    ("http://[64:ff9b::a9fe:a9fe]/", ["is 169.254.169.254", "link-local"]),  # NAT64
    ("http://[2002:a00:1::]/", ["6to4-wrapped private"]),
    ("http://192.0.2.10/", ["documentation"]),
    ("http://nowhere.partner.example/", ["'nowhere.partner.example' does not resolve"]),
    ("gopher://10.0.0.1/", ["http:// or https://"]),
]


@pytest.fixture
async def api(strict: WebhookOutbox) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api_services(strict._sessions, webhooks=strict)) as http:
        yield http


@pytest.mark.parametrize(("url", "said"), REFUSED, ids=[u for u, _ in REFUSED])
async def test_registration_refuses_what_is_not_public(
    api: httpx.AsyncClient, url: str, said: list[str]
) -> None:
    response = await api.post("/api/v1/webhooks", json={"url": url, "secret": SECRET})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "url"]
    for part in said:
        assert part in error["msg"], error["msg"]
    if error["msg"].startswith("webhook host") and "resolve" not in error["msg"]:
        assert ALLOW_HINT in error["msg"]  # an address rule: it says what to do about it
    assert (await api.get("/api/v1/webhooks")).json() == []


async def test_registration_accepts_public_addresses_and_names(
    api: httpx.AsyncClient, names: Names
) -> None:
    for url in (f"http://{PUBLIC}/hook", "https://hooks.partner.example/sigap"):
        response = await api.post("/api/v1/webhooks", json={"url": url, "secret": SECRET})
        assert response.status_code == 201, response.text
    assert names.asked == ["hooks.partner.example"]  # an address literal needs no lookup


async def test_one_private_address_among_public_ones_is_enough_to_refuse(
    strict: WebhookOutbox, names: Names
) -> None:
    names.answers["mixed.partner.example"] = [PUBLIC, "2606:2800:21f::1", "10.1.2.3"]
    with pytest.raises(EgressRefused) as refused:
        await subscribe(strict, "https://mixed.partner.example/hook")
    assert "resolves to 10.1.2.3, a private address" in str(refused.value)
    assert strict.subscribers == ()


async def test_allowlisted_loopback_is_accepted_and_nothing_more(
    sessions: async_sessionmaker[AsyncSession], names: Names
) -> None:
    box = await make_outbox(sessions, names, LOOPBACK)
    assert await subscribe(box, "http://127.0.0.1:8086/hook")
    assert await subscribe(box, "http://[::ffff:127.0.0.1]:8086/hook")  # the same address
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.2"):
        await subscribe(box, "http://127.0.0.2:8086/hook")
    with pytest.raises(EgressRefused, match=r"resolves to ::1, a loopback"):
        await subscribe(box, "http://localhost:8086/hook")  # 127.0.0.1, and ::1 too


async def test_a_host_that_does_not_answer_in_time_is_refused() -> None:
    async def silent(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()  # never
        raise AssertionError

    policy = EgressPolicy(resolver=silent, resolve_timeout_s=0.01)
    with pytest.raises(UnresolvedHost, match=r"did not resolve within 0\.01 s"):
        await policy.check_url("https://slow.partner.example/hook")


async def test_the_system_resolver_is_asked_and_localhost_refused() -> None:
    # Real name resolution, of a name every system answers itself (no DNS query).
    with pytest.raises(EgressRefused, match=r"'localhost' resolves to .*a loopback address"):
        await EgressPolicy().check_url("http://localhost:8086/query")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\\@169.254.169.254/",
        "http://user:pw@example.com/",
        "http://a@b@example.com/",
        "http://example.com /x",
        "http://exa\tmple.com/",
        "http://[fe80::1%25eth0]/",
        "ftp://example.org/x",
        "http://example.com:99999/",
    ],
)
def test_webhook_create_refuses_urls_that_could_be_read_two_ways(url: str) -> None:
    with pytest.raises(ValidationError):
        WebhookCreate(url=url, secret=SECRET)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.20.30.40", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("fd12:3456::1", "unique-local"),
        ("fec0::1", "site-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("0.1.2.3", "'this network'"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "documentation"),
        ("2001:db8::1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.0.8", "IETF protocol"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:7f00:1::", "6to4-wrapped loopback"),
        ("2001::1", "Teredo"),
        ("::7f00:1", "reserved"),  # IPv4-compatible, long deprecated
    ],
)
def test_forbidden_addresses_and_why(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [PUBLIC, "8.8.8.8", "::ffff:8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_the_allow_setting_reads_networks_and_refuses_typos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS", "10.20.0.0/16, 127.0.0.1,fd00::/8")
    nets = DispatchSettings().webhook_allow_networks
    assert nets == ("10.20.0.0/16", "127.0.0.1", "fd00::/8")
    policy = EgressPolicy(nets)
    assert policy.reason(ipaddress.ip_address("10.20.1.2")) is None
    assert policy.reason(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.reason(ipaddress.ip_address("10.21.0.1")) == "private"
    monkeypatch.setenv("SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS", "10.0.0.5/8")
    with pytest.raises(ValidationError, match=r"SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS.*10\.0\.0\.5/8"):
        DispatchSettings()
    monkeypatch.delenv("SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS")
    assert DispatchSettings().webhook_allow_networks == ()  # none unless configured


# --- delivery --------------------------------------------------------------------------------


async def test_a_name_that_turns_loopback_after_subscribing_is_refused_at_delivery(
    sessions: async_sessionmaker[AsyncSession],
    strict: WebhookOutbox,
    names: Names,
    receiver: Receiver,
) -> None:
    sub = await subscribe(strict, f"http://hooks.partner.example:{receiver.port}/hook")
    names.answers["hooks.partner.example"] = ["127.0.0.1"]  # DNS rebinding
    await enqueue(sessions, strict, await changes_for(sessions, "fire.alarm"))
    failed = failed_deliveries()

    async with strict.http_client(timeout_s=5.0) as http:
        assert await strict.deliver_due(http, T0) == 0
    assert receiver.requests == []  # it listens on 127.0.0.1 at that very port
    (row,) = await strict.deliveries(sub, state="pending")
    assert row.last_error == "refused: resolves to 127.0.0.1 (loopback)"
    assert row.attempts == 1 and row.next_attempt_at == T0 + timedelta(seconds=1)  # backoff
    assert failed_deliveries() == failed + 1


async def test_a_client_of_another_making_is_checked_too(
    sessions: async_sessionmaker[AsyncSession], strict: WebhookOutbox, receiver: Receiver
) -> None:
    sub = await stored_subscriber(sessions, f"{receiver.url}/hook")
    await strict.load()
    await enqueue(sessions, strict, await changes_for(sessions, "fire.alarm"))
    async with httpx.AsyncClient(timeout=5.0) as plain:  # knows nothing of the policy
        assert await strict.deliver_due(plain, T0) == 0
    assert receiver.requests == []
    (row,) = await strict.deliveries(sub)
    assert row.last_error == "refused: 127.0.0.1 (loopback)"


async def test_a_loopback_influxdb_gets_nothing_unless_allowlisted(
    sessions: async_sessionmaker[AsyncSession],
    strict: WebhookOutbox,
    names: Names,
    receiver: Receiver,
) -> None:
    # The probe's webhook: InfluxDB's query endpoint on loopback, creating a database.
    influx = f"{receiver.url}/query?q=CREATE+DATABASE+pwned"
    with pytest.raises(EgressRefused):
        await subscribe(strict, influx)
    # One stored before the check existed is refused when it is due.
    sub = await stored_subscriber(sessions, influx)
    await strict.load()
    await enqueue(sessions, strict, await changes_for(sessions, "fire.alarm"))
    async with strict.http_client() as http:
        assert await strict.deliver_due(http, T0) == 0
    assert receiver.requests == []
    (row,) = await strict.deliveries(sub)
    assert row.last_error == "refused: 127.0.0.1 (loopback)"

    allowing = await make_outbox(sessions, names, LOOPBACK)  # the operator's choice
    async with allowing.http_client() as http:
        assert await allowing.deliver_due(http, T0 + timedelta(seconds=1)) == 1
    assert receiver.paths() == ["/query?q=CREATE+DATABASE+pwned"]


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://admin:pw@127.0.0.1:{port}/hook", "refused: url must not contain a user name"),
        # httpx cannot even parse it: once, it stopped every delivery pass with InvalidURL.
        ("http://0177.0.0.1:{port}/hook", "refused: url is not valid"),
    ],
)
async def test_a_stored_url_the_rules_refuse_is_refused_at_delivery(
    sessions: async_sessionmaker[AsyncSession],
    names: Names,
    receiver: Receiver,
    url: str,
    error: str,
) -> None:
    box = await make_outbox(sessions, names, LOOPBACK)
    bad = await stored_subscriber(sessions, url.format(port=receiver.port))
    good = await subscribe(box, f"{receiver.url}/hook")
    await enqueue(sessions, box, await changes_for(sessions, "fire.alarm"))
    async with box.http_client() as http:
        assert await box.deliver_due(http, T0) == 1  # the other subscriber still gets its own
    assert receiver.paths() == ["/hook"]
    (row,) = await box.deliveries(bad)
    assert row.last_error and row.last_error.startswith(error)
    assert (await box.deliveries(good))[0].delivered_at is not None


async def test_the_connection_goes_to_the_address_that_was_checked(
    sessions: async_sessionmaker[AsyncSession], names: Names, receiver: Receiver
) -> None:
    # A name only the policy's resolver knows: reaching the receiver proves the socket
    # went to the address the check saw, and one lookup proves nothing looked again.
    names.answers["receiver.partner.example"] = ["127.0.0.1"]
    box = await make_outbox(sessions, names, LOOPBACK)
    await subscribe(box, f"http://receiver.partner.example:{receiver.port}/hook")
    await enqueue(sessions, box, await changes_for(sessions, "fire.alarm"))
    names.asked.clear()
    async with box.http_client() as http:
        assert await box.deliver_due(http, T0) == 1
    assert names.asked == ["receiver.partner.example"]
    (got,) = receiver.requests
    assert got.headers["host"] == f"receiver.partner.example:{receiver.port}"


@pytest.mark.parametrize(
    "location", ["http://169.254.169.254/latest/meta-data/", "/elsewhere", "http://10.0.0.1/"]
)
async def test_redirects_are_not_followed(
    sessions: async_sessionmaker[AsyncSession], names: Names, receiver: Receiver, location: str
) -> None:
    box = await make_outbox(sessions, names, LOOPBACK)
    sub = await subscribe(box, f"{receiver.url}/hook")
    await enqueue(sessions, box, await changes_for(sessions, "fire.alarm"))
    receiver.answers = [(302, {"location": location})]
    async with box.http_client() as http:
        assert http.follow_redirects is False and http.trust_env is False
        assert await box.deliver_due(http, T0) == 0
    assert receiver.paths() == ["/hook"]
    (row,) = await box.deliveries(sub)
    assert row.last_error == "HTTP 302 Found"


async def test_proxies_from_the_environment_are_not_used(
    sessions: async_sessionmaker[AsyncSession],
    names: Names,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    nobody = closed_port_url().removesuffix("/nobody-home")  # a proxy would fail at once
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(variable, nobody)
    box = await make_outbox(sessions, names, LOOPBACK)
    await subscribe(box, f"{receiver.url}/hook")
    await enqueue(sessions, box, await changes_for(sessions, "fire.alarm"))
    async with box.http_client(timeout_s=5.0) as http:
        assert await box.deliver_due(http, T0) == 1
    assert receiver.paths() == ["/hook"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for hooks.tls.example (key, cert)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    request = (
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=hooks.tls.example -addext subjectAltName=DNS:hooks.tls.example"
    )
    subprocess.run(
        [openssl, *request.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return key, cert


async def test_https_keeps_the_name_for_sni_and_certificate_checks(
    sessions: async_sessionmaker[AsyncSession], names: Names, certificate: tuple[Path, Path]
) -> None:
    key, cert = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    sni: list[str | None] = []

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name)

    server_tls.sni_callback = record_sni
    receiver = Receiver(tls=server_tls)
    await receiver.start()
    try:
        names.answers["hooks.tls.example"] = ["127.0.0.1"]
        box = await make_outbox(sessions, names, LOOPBACK)
        by_name = await subscribe(box, f"https://hooks.tls.example:{receiver.port}/hook")
        by_address = await subscribe(box, f"https://127.0.0.1:{receiver.port}/hook")
        await enqueue(sessions, box, await changes_for(sessions, "fire.alarm"))
        trust = ssl.create_default_context(cafile=str(cert))
        async with pinned_client(box.policy, timeout_s=5.0, verify=trust) as http:
            assert await box.deliver_due(http, T0) == 1
        # Both connections went to 127.0.0.1; TLS sent the name where there was one.
        assert len(sni) == 2 and set(sni) == {"hooks.tls.example", None}
        (delivered,) = await box.deliveries(by_name)
        assert delivered.delivered_at is not None
        (mismatch,) = await box.deliveries(by_address)  # the certificate is not for it
        assert mismatch.last_error == "ConnectError: certificate not trusted"
    finally:
        await receiver.stop()


# --- what last_error keeps -------------------------------------------------------------------


async def test_a_failed_answer_keeps_its_status_never_its_body(
    sessions: async_sessionmaker[AsyncSession], names: Names, receiver: Receiver
) -> None:
    box = await make_outbox(sessions, names, LOOPBACK)
    async with api_client(api_services(sessions, webhooks=box)) as api:
        created = await api.post(
            "/api/v1/webhooks", json={"url": f"{receiver.url}/hook", "secret": SECRET}
        )
        assert created.status_code == 201, created.text
        hook = created.json()["id"]
        await enqueue(sessions, box, await changes_for(sessions, "fire.alarm"))
        receiver.error_body = b"Traceback ... config: db_password=hunter2 host=10.20.30.40"
        receiver.error_reason = b"db_password=hunter2"
        receiver.answers = [500]
        async with box.http_client() as http:
            assert await box.deliver_due(http, T0) == 0

        crew = await issue(api, "crew")
        shown = await api.get(f"/api/v1/webhooks/{hook}/deliveries", headers=crew)
        assert shown.status_code == 200
        assert "db_password" not in shown.text and "hunter2" not in shown.text
        (delivery,) = shown.json()
        assert delivery["last_error"] == "HTTP 500 Internal Server Error"
        admin = await api.get(f"/api/v1/webhooks/{hook}/deliveries", headers=ADMIN_HEADERS)
        assert "hunter2" not in admin.text  # nobody: it was never read


def test_error_texts_are_short_and_fixed() -> None:
    assert http_error(503) == "HTTP 503 Service Unavailable"
    assert http_error(599) == "HTTP 599"
    request = httpx.Request("POST", "https://hooks.partner.example/")
    peer_text = "db_password=hunter2 " * 50
    read = transport_error(httpx.ReadTimeout(peer_text, request=request))
    assert read == "ReadTimeout: no answer within the timeout"
    broken = transport_error(httpx.RemoteProtocolError(peer_text, request=request))
    assert broken == "RemoteProtocolError: the receiver broke the HTTP protocol"
    refused = httpx.ConnectError("All connection attempts failed")
    refused.__cause__ = ConnectionRefusedError(111, peer_text)
    assert transport_error(refused) == "ConnectError: connection refused"
    long_host = "a" * 63 + "." + "b" * 63 + "." + "c" * 63
    assert len(UnresolvedHost(long_host, "does not resolve").short) <= MAX_ERROR_CHARS
    assert len(EgressRefused(long_host, ipaddress.ip_address("10.0.0.1"), "private").short) <= (
        MAX_ERROR_CHARS
    )


def test_migration_scrubs_bodies_from_stored_errors(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}", poolclass=pool.NullPool)
    with engine.connect() as conn:
        command.upgrade(migrations.config(conn), "0005")  # the revision before the scrub
        conn.execute(
            text(
                "INSERT INTO webhook_subscribers (id, url, secret, active, created_at) "
                "VALUES (1, 'https://hooks.partner.example/', :secret, 1, '2026-01-01')"
            ),
            {"secret": SECRET},
        )
        errors: dict[int, Any] = {
            1: "HTTP 500: Traceback ... db_password=hunter2",
            2: "HTTP 503",
            3: "ConnectError: All connection attempts failed",
            4: None,
        }
        for event_id, error in errors.items():
            conn.execute(
                text(
                    "INSERT INTO webhook_outbox (subscriber_id, event_id, idempotency_key, "
                    "body, attempts, next_attempt_at, last_error, created_at) VALUES "
                    "(1, :event, :key, '{}', 1, '2026-01-01', :error, '2026-01-01')"
                ),
                {"event": event_id, "key": f"sigap-1-{event_id}", "error": error},
            )
        conn.commit()
        migrations.upgrade(conn)
        conn.commit()
        kept: dict[int, str | None] = dict(
            conn.execute(text("SELECT event_id, last_error FROM webhook_outbox")).all()
        )
    engine.dispose()
    assert kept == {
        1: "HTTP 500",
        2: "HTTP 503",
        3: "ConnectError: All connection attempts failed",
        4: None,
    }
