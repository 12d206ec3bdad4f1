"""Console sign-in: a session cookie instead of the token, CSRF rules for cookie writes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dashboard_api import app as app_module
from dashboard_api.access import Authenticator, TokenStore, hash_token
from dashboard_api.access.tables import ApiTokenRow, ConsoleSessionRow
from dashboard_api.app import create_app
from dashboard_api.console.sessions import SLIDE_EVERY, SessionStore
from dashboard_api.deps import ApiServices, MapTiles
from dispatch.store import AlertStore
from sigap.runtime import make_engine
from tests.postgres import both_backends
from tests.unit.conftest import (
    ADMIN_HEADERS,
    TEST_ADMIN_TOKEN,
    api_client,
    api_services,
)
from tests.unit.test_alert_lifecycle import Clock, fire_event

COOKIE = "sigap_session"
FOREIGN = "https://evil.example"


@dataclass
class Signed:
    """A signed-in console: its cookie header and CSRF token."""

    cookie: dict[str, str]
    csrf: str
    body: dict[str, Any]

    def writes(self, **extra: str) -> dict[str, str]:
        """Headers of a write as the console's page sends it."""
        return self.cookie | {"X-CSRF-Token": self.csrf} | extra


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> ApiServices:
    return api_services(sessions, console=SessionStore(sessions, clock=clock))


@pytest.fixture
async def client(services: ApiServices) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(services) as c:
        c.headers.clear()  # each request says who it is
        yield c


async def issue(client: httpx.AsyncClient, role: str, name: str | None = None) -> str:
    """Issue a token as admin; returns its secret."""
    response = await client.post(
        "/api/v1/tokens", json={"name": name or f"{role}-1", "role": role}, headers=ADMIN_HEADERS
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def sign_in(
    client: httpx.AsyncClient, token: str, headers: Mapping[str, str] | None = None
) -> Signed:
    """Sign in as the console does; the cookie is passed by hand, not kept by the client."""
    response = await client.post("/console/session", json={"token": token}, headers=headers)
    assert response.status_code == 200, response.text
    client.cookies.clear()
    value = response.headers["set-cookie"].split(";")[0].removeprefix(f"{COOKIE}=")
    body = response.json()
    return Signed({"Cookie": f"{COOKIE}={value}"}, body["csrf_token"], body)


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[ConsoleSessionRow]:
    async with sessions() as session:
        return list(await session.scalars(select(ConsoleSessionRow)))


@both_backends
async def test_sign_in_sets_an_http_only_strict_cookie_and_never_shows_the_token(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await issue(client, "dispatcher", name="console-damkar-1")
    response = await client.post(
        "/console/session", json={"token": token}, headers={"Origin": "http://test"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"name", "role", "csrf_token", "expires_at", "tiles"}
    assert body["name"] == "console-damkar-1" and body["role"] == "dispatcher"
    assert token not in response.text and response.headers["cache-control"] == "no-store"
    set_cookie = response.headers["set-cookie"]
    value = set_cookie.split(";")[0].removeprefix(f"{COOKIE}=")
    attributes = [part.strip() for part in set_cookie.split(";")[1:]]
    assert attributes == ["HttpOnly", "SameSite=Strict", "Path=/"]  # no Secure over http
    assert len(value) >= 43 and token not in set_cookie  # 256 random bits, not the token
    (row,) = await rows(sessions)
    assert row.session_hash == hash_token(value) and row.token_hash == hash_token(token)
    stored = [row.session_hash, row.token_hash, row.csrf_token]
    assert value not in stored and token not in stored  # only hashes of the secrets


async def test_the_cookie_is_secure_over_https(services: ApiServices) -> None:
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="https://sigap.test") as client:
        response = await client.post(
            "/console/session",
            json={"token": TEST_ADMIN_TOKEN},
            headers={"Origin": "https://sigap.test"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["set-cookie"].endswith("; Secure")
    assert response.json()["name"] == "SIGAP_ADMIN_TOKEN" and response.json()["role"] == "admin"


async def test_sign_in_refuses_foreign_origins_bad_tokens_and_malformed_bodies(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await issue(client, "dispatcher")
    for origin in (FOREIGN, "http://test:8080", "https://test", "null"):
        refused = await client.post(
            "/console/session", json={"token": token}, headers={"Origin": origin}
        )
        assert refused.status_code == 403, origin
        assert "cross-site request refused" in refused.json()["detail"]
        assert "set-cookie" not in refused.headers
    # Refused before the body is read: a login CSRF learns nothing from its answer.
    assert (
        await client.post("/console/session", content=b"x", headers={"Origin": FOREIGN})
    ).status_code == 403
    unknown = await client.post("/console/session", json={"token": "sigap_made-up"})
    assert unknown.status_code == 401 and "not valid" in unknown.json()["detail"]
    for bad in ({}, {"token": ""}, {"token": token, "role": "admin"}, {"token": 5}):
        assert (await client.post("/console/session", json=bad)).status_code == 422, bad
    assert await rows(sessions) == []


@both_backends
async def test_the_cookie_reads_the_api_and_its_session(
    client: httpx.AsyncClient, services: ApiServices
) -> None:
    signed = await sign_in(client, await issue(client, "crew", name="truk-3"))
    again = await client.get("/console/session", headers=signed.cookie)
    assert again.status_code == 200 and again.json() == signed.body
    assert again.headers["cache-control"] == "no-store"
    assert (await client.get("/api/v1/alerts", headers=signed.cookie)).status_code == 200
    assert (await client.get("/api/v1/devices", headers=signed.cookie)).status_code == 200
    assert (await client.get("/console/session")).status_code == 401  # no cookie
    made_up = {"Cookie": f"{COOKIE}=made-up"}
    assert (await client.get("/console/session", headers=made_up)).status_code == 401
    ended = await client.get("/api/v1/alerts", headers=made_up)
    assert ended.status_code == 401 and "sign in again" in ended.json()["detail"]
    # The live stream takes the cookie too (EventSource and fetch send it same-origin).
    assert await stream_status(services, signed.cookie) == 200
    assert await stream_status(services, made_up) == 401


async def stream_status(services: ApiServices, headers: dict[str, str]) -> int:
    """The status GET /api/v1/alerts/stream starts with (the stream itself never ends)."""
    app: FastAPI = create_app(services=services)
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def receive() -> MutableMapping[str, Any]:
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/alerts/stream",
        "raw_path": b"/api/v1/alerts/stream",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (k.lower().encode(), v.encode()) for k, v in (headers | {"Host": "test"}).items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    task = asyncio.create_task(app(scope, receive, send))
    try:
        return await asyncio.wait_for(started, 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@both_backends
async def test_cookie_writes_need_the_csrf_token_and_this_origin(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    signed = await sign_in(client, await issue(client, "dispatcher", name="console-damkar-1"))
    (raised,) = await AlertStore(sessions).apply([fire_event()])
    ack = f"/api/v1/alerts/{raised.alert.id}/ack"
    for headers in (
        signed.cookie,  # no X-CSRF-Token
        signed.cookie | {"X-CSRF-Token": ""},
        signed.cookie | {"X-CSRF-Token": signed.csrf[:-1] + "x"},
        signed.writes(Origin=FOREIGN),  # the right token, from another site
        signed.writes(Origin="null"),
        signed.writes(Origin="http://test:8080"),  # another port is another origin
    ):
        refused = await client.post(ack, json={}, headers=headers)
        assert refused.status_code == 403, headers
        assert "cross-site request refused" in refused.json()["detail"]
    done = await client.post(ack, json={}, headers=signed.writes(Origin="http://test"))
    assert done.status_code == 200 and done.json()["acknowledged_by"] == "console-damkar-1"
    resolve = f"/api/v1/alerts/{raised.alert.id}/resolve"  # no Origin header (older browsers)
    resolved = await client.post(resolve, json={"outcome": "false_alarm"}, headers=signed.writes())
    assert resolved.status_code == 200 and resolved.json()["status"] == "false_alarm"


async def test_the_session_keeps_the_role_of_its_token(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    crew = await sign_in(client, await issue(client, "crew"))
    (raised,) = await AlertStore(sessions).apply([fire_event()])
    ack = await client.post(f"/api/v1/alerts/{raised.alert.id}/ack", json={}, headers=crew.writes())
    assert ack.status_code == 403 and "'crew' may not do this" in ack.json()["detail"]
    tokens = await client.get("/api/v1/tokens", headers=crew.cookie)
    assert tokens.status_code == 403


@both_backends
async def test_sign_out_ends_the_session_at_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    signed = await sign_in(client, await issue(client, "dispatcher"))
    other = await sign_in(client, await issue(client, "crew"))
    refused = await client.delete("/console/session", headers=signed.cookie)  # no CSRF token
    assert refused.status_code == 403 and "cross-site request refused" in refused.text
    foreign = await client.delete("/console/session", headers=signed.writes(Origin=FOREIGN))
    assert foreign.status_code == 403
    assert (await client.get("/console/session", headers=signed.cookie)).status_code == 200
    out = await client.delete("/console/session", headers=signed.writes(Origin="http://test"))
    assert out.status_code == 204 and out.content == b""
    assert out.headers["set-cookie"].startswith(f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/")
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert (await client.get("/console/session", headers=signed.cookie)).status_code == 401
    assert (await client.get("/api/v1/alerts", headers=signed.cookie)).status_code == 401
    # The other console's session is untouched.
    assert (await client.get("/console/session", headers=other.cookie)).status_code == 200
    assert len(await rows(sessions)) == 1
    again = await client.delete("/console/session", headers=signed.cookie)
    assert again.status_code == 204  # nothing left to end: only the cookie is cleared


async def test_signing_in_again_ends_the_previous_session(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await sign_in(client, await issue(client, "crew"))
    second = await sign_in(client, await issue(client, "dispatcher"), headers=first.cookie)
    assert (await client.get("/console/session", headers=first.cookie)).status_code == 401
    assert (await client.get("/console/session", headers=second.cookie)).json()["role"] == (
        "dispatcher"
    )
    assert len(await rows(sessions)) == 1


@both_backends
async def test_revoking_the_token_ends_its_sessions(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token, crew_token = await issue(client, "technician"), await issue(client, "crew")
    signed, kept = await sign_in(client, token), await sign_in(client, crew_token)
    assert (await client.get("/api/v1/devices", headers=signed.cookie)).status_code == 200
    listed = (await client.get("/api/v1/tokens", headers=ADMIN_HEADERS)).json()
    (token_id,) = [t["id"] for t in listed if t["role"] == "technician"]
    revoked = await client.delete(f"/api/v1/tokens/{token_id}", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200
    assert (await client.get("/api/v1/devices", headers=signed.cookie)).status_code == 401
    assert (await client.get("/console/session", headers=signed.cookie)).status_code == 401
    assert [row.token_hash for row in await rows(sessions)] == [hash_token(crew_token)]
    assert (await client.get("/console/session", headers=kept.cookie)).status_code == 200
    again = await client.post("/console/session", json={"token": token})
    assert again.status_code == 401


@both_backends
async def test_a_token_revoked_elsewhere_ends_its_session_on_next_use_here(
    client: httpx.AsyncClient,
    services: ApiServices,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    signed = await sign_in(client, await issue(client, "dispatcher"))
    assert (await client.get("/api/v1/alerts", headers=signed.cookie)).status_code == 200
    # Revoked in SQL by another instance, its session rows left (say, by an older version):
    # this instance finds out once its 5 s token cache lapses, and deletes the session.
    async with sessions() as session:
        await session.execute(update(ApiTokenRow).values(revoked_at=clock.now))
        await session.commit()
    assert len(await rows(sessions)) == 1
    assert services.auth is not None
    services.auth.forget()  # the cache entry, lapsed
    assert (await client.get("/api/v1/alerts", headers=signed.cookie)).status_code == 401
    assert await rows(sessions) == []


@both_backends
async def test_an_idle_session_expires_and_use_slides_it_at_most_once_a_minute(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    signed = await sign_in(client, await issue(client, "dispatcher"))
    started = clock.now
    assert signed.body["expires_at"] == _iso(started + timedelta(hours=12))

    clock.now += SLIDE_EVERY / 2  # used again soon: no write
    assert (await client.get("/api/v1/alerts", headers=signed.cookie)).status_code == 200
    (row,) = await rows(sessions)
    assert row.last_seen_at == started

    clock.now = started + timedelta(hours=11)  # used within the idle time: slid forward
    slid = await client.get("/console/session", headers=signed.cookie)
    assert slid.status_code == 200
    assert slid.json()["expires_at"] == _iso(clock.now + timedelta(hours=12))
    (row,) = await rows(sessions)
    assert row.last_seen_at == clock.now and row.expires_at == clock.now + timedelta(hours=12)

    clock.now += timedelta(hours=11)  # 22 h after sign-in, 11 h idle: still signed in
    assert (await client.get("/api/v1/alerts", headers=signed.cookie)).status_code == 200

    clock.now += timedelta(hours=12, seconds=1)  # idle past the limit
    assert (await client.get("/api/v1/alerts", headers=signed.cookie)).status_code == 401
    assert (await client.get("/console/session", headers=signed.cookie)).status_code == 401
    assert await rows(sessions) == []  # the expired row went with it


async def test_expired_sessions_are_cleared_out_at_sign_in(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    token = await issue(client, "crew")
    for _ in range(3):
        await sign_in(client, token)  # never used again
    clock.now += timedelta(hours=12, seconds=1)
    fresh = await sign_in(client, token)
    assert [row.session_hash for row in await rows(sessions)] == [
        hash_token(fresh.cookie["Cookie"].split("=", 1)[1])
    ]


async def test_the_idle_time_is_a_setting(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    store = SessionStore(sessions, idle=timedelta(minutes=30), clock=clock)
    secret, session = await store.open(hash_token("t"))
    assert session.expires_at == clock.now + timedelta(minutes=30)
    clock.now += timedelta(minutes=31)
    assert await store.get(secret) is None


@both_backends
async def test_sessions_survive_a_restart(
    client: httpx.AsyncClient, sql_url: str, clock: Clock
) -> None:
    dispatcher = await sign_in(client, await issue(client, "dispatcher", name="console-2"))
    admin = await sign_in(client, TEST_ADMIN_TOKEN)
    # A new process: new engine, authenticator, session store and app on the same database.
    engine = make_engine(sql_url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        fresh = api_services(sessions, console=SessionStore(sessions, clock=clock))
        async with api_client(fresh) as restarted:
            restarted.headers.clear()
            found = await restarted.get("/console/session", headers=dispatcher.cookie)
            assert found.status_code == 200 and found.json() == dispatcher.body
            alerts = await restarted.get("/api/v1/alerts", headers=dispatcher.cookie)
            assert alerts.status_code == 200
            as_admin = await restarted.get("/api/v1/tokens", headers=admin.cookie)
            assert as_admin.status_code == 200  # SIGAP_ADMIN_TOKEN's session, by its hash
        # Restarted with another SIGAP_ADMIN_TOKEN: sessions opened with the old one end.
        rotated = api_services(
            sessions,
            auth=Authenticator(TokenStore(sessions), "a-new-admin-token"),
            console=SessionStore(sessions, clock=clock),
        )
        async with api_client(rotated) as restarted:
            restarted.headers.clear()
            assert (await restarted.get("/console/session", headers=admin.cookie)).status_code == (
                401
            )
            assert (
                await restarted.get("/console/session", headers=dispatcher.cookie)
            ).status_code == 200
    finally:
        await engine.dispose()


async def test_bearer_requests_are_unaffected_by_the_cookie_rules(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bearer = {"Authorization": f"Bearer {await issue(client, 'dispatcher', name='api-1')}"}
    (raised,) = await AlertStore(sessions).apply([fire_event()])
    # No CSRF token and a foreign Origin: a bearer token is not sent by browsers on their
    # own, so there is nothing to forge.
    ack = await client.post(
        f"/api/v1/alerts/{raised.alert.id}/ack", json={}, headers=bearer | {"Origin": FOREIGN}
    )
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "api-1"
    # A bearer header wins over a cookie, valid or not, and keeps its own answers.
    crew = await sign_in(client, await issue(client, "crew"))
    wrong = await client.get(
        "/api/v1/alerts", headers=crew.cookie | {"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["detail"] == (
        "the bearer token is not valid (unknown or revoked)"
    )
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    none = await client.get("/api/v1/alerts")
    assert none.status_code == 401 and none.json()["detail"] == (
        "this endpoint needs a bearer token (Authorization: Bearer <token>)"
    )
    # /readyz tells a signed-in console why a check fails, as it tells a token holder.
    assert (await client.get("/readyz", headers=crew.cookie)).status_code == 200


async def test_the_console_page_and_assets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, services: ApiServices
) -> None:
    static = tmp_path / "static"
    (static / "js").mkdir(parents=True)
    (static / "js" / "app.js").write_text("export {};\n")
    monkeypatch.setattr(app_module, "CONSOLE_STATIC", static)
    async with api_client(services) as client:
        client.headers.clear()
        missing = await client.get("/")
        assert missing.status_code == 404 and "console is not installed" in missing.text
        (static / "index.html").write_text("<!doctype html><title>Sigap</title>\n")
        page = await client.get("/")
        assert page.status_code == 200 and page.text.startswith("<!doctype html>")
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-frame-options"] == "DENY"
        script = await client.get("/console/static/js/app.js")
        assert script.status_code == 200 and script.text == "export {};\n"
        assert "javascript" in script.headers["content-type"]
        assert script.headers["cache-control"] == "no-cache"
        assert (await client.get("/console/static/js/nope.js")).status_code == 404
        assert (await client.get("/console/static/../app.py")).status_code == 404


async def test_the_console_needs_the_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, services: ApiServices
) -> None:
    monkeypatch.setattr(app_module, "CONSOLE_STATIC", tmp_path)
    (tmp_path / "index.html").write_text("<!doctype html>\n")
    transport = httpx.ASGITransport(app=create_app(services=services, api=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as worker:
        assert (await worker.get("/")).status_code == 404
        assert (await worker.get("/index.html")).status_code == 404
        assert (
            await worker.post("/console/session", json={"token": TEST_ADMIN_TOKEN})
        ).status_code == 404


async def test_the_shipped_console_is_served() -> None:
    assert (app_module.CONSOLE_STATIC / "index.html").is_file()
    transport = httpx.ASGITransport(app=create_app())  # the page needs no services
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = await client.get("/")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"


def _iso(moment: datetime) -> str:
    """A datetime as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


async def test_the_session_names_the_map_tiles_when_configured(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """SIGAP_CONSOLE_TILE_URL reaches the page with the session; without it, a plain map."""
    plain = api_services(sessions, console=SessionStore(sessions, clock=clock))
    async with api_client(plain) as c:
        c.headers.clear()
        signed = await sign_in(c, await issue(c, "dispatcher"))
        assert signed.body["tiles"] is None
    tiled = dataclasses.replace(
        plain, map_tiles=MapTiles("http://tiles.kotim.local/{z}/{x}/{y}.png", "© OSM")
    )
    async with api_client(tiled) as c:
        c.headers.clear()
        signed = await sign_in(c, await issue(c, "crew"))
        assert signed.body["tiles"] == {
            "url": "http://tiles.kotim.local/{z}/{x}/{y}.png",
            "attribution": "© OSM",
        }
        again = await c.get("/console/session", headers=signed.cookie)
        assert again.json()["tiles"] == signed.body["tiles"]
