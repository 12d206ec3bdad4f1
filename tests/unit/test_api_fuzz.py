"""Property-based fuzzing of the whole API from its OpenAPI document (issue #22), per role.

Schemathesis generates requests for every operation of /openapi.json, valid and invalid,
and sends them to the real app in-process, on a real SQLite file (at the newest migration)
seeded with devices, a gateway, stations, alerts, a route plan, a webhook and tokens, as
each role with its own bearer token and its own database. Every response must be no
server error, come within MAX_RESPONSE_S, and be as the document says: a declared status,
content type and body (dashboard_api/openapi.py documents the refusals).

Always SQLite, whatever SIGAP_TEST_DATABASE says: schemathesis runs the app in an event
loop of its own, and asyncpg's connections belong to the loop that opened them.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.specs.openapi import checks as openapi_checks
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contract.bins import BinStatus
from contract.timeutil import to_ms
from dashboard_api.access import Role, TokenCreate, TokenStore
from dashboard_api.app import create_app
from dashboard_api.deps import ApiServices
from devices import profiles
from devices.provisioning import InMemoryAccounts
from dispatch.egress import EgressPolicy
from dispatch.stations.registry import StationRegistry
from dispatch.store import AlertStore
from dispatch.webhooks import WebhookOutbox
from pickup_routes.service import RouteConfig, RouteService
from rules.events import Action, AlertEvent, Severity
from rules.haze import RegionHaze
from sigap.runtime import make_engine
from tests.unit.conftest import ADMIN_HEADERS, DEPOT, TEST_ADMIN_TOKEN, api_services
from tests.unit.test_alert_lifecycle import T0, fire_event

# A bound on every response, far above what any takes (milliseconds): it is there to catch
# a request that hangs or holds the event loop (issue #22), not to measure speed, and is
# generous so that a busy 2-core CI machine does not make it flaky.
MAX_RESPONSE_S = 2.0
# Generated examples per operation and role (the admin also gets the coverage phase's
# cases): the module runs in about 40 s with these.
MAX_EXAMPLES = 10
# The route planner's clock: 05:00 WIB, an hour before the depot's shift (a plan made at
# the real time of day might fall at the end of a shift and hold no route).
NOW = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)

FIRE = [("fire-1", -2.5401, 112.9501), ("fire-2", -2.5450, 112.9550)]
BINS = [("bin-1", -2.5210, 112.9560), ("bin-2", -2.5300, 112.9600), ("bin-3", -2.5180, 112.945)]
GATEWAY: dict[str, Any] = {
    "id": "gw-1",
    "kind": "mqtt",
    "name": "Gateway pasar",
    "lat": -2.53,
    "lon": 112.95,
}
FIRE_STATION = {
    "id": "damkar-baamang",
    "kind": "fire_station",
    "name": "Pos Damkar Baamang",
    "lat": -2.5300,
    "lon": 112.9500,
}


@pytest.fixture(scope="module")
def role(request: pytest.FixtureRequest) -> Role:
    """The role a test fuzzes the whole API as (parametrised by each test)."""
    value: Role = request.param
    return value


Ids = dict[str, list[str | int]]


async def seed(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Ids:
    """A little of everything, through the API as an operator would; the ids by kind."""

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body)
        assert response.status_code == 201, (path, response.text)
        created: dict[str, Any] = response.json()
        return created

    for device_id, lat, lon in FIRE:
        await post("/api/v1/devices", {"id": device_id, "kind": "fire", "lat": lat, "lon": lon})
    await post("/api/v1/gateways", GATEWAY)
    for device_id, lat, lon in BINS:
        body = {"id": device_id, "kind": "bin", "lat": lat, "lon": lon, "depth_mm": 1100}
        await post("/api/v1/devices", body | {"gateway_id": "gw-1"})
    await post("/api/v1/stations", DEPOT)
    await post("/api/v1/stations", FIRE_STATION)
    # Alerts come from the rule engine, not the API: smoke at one detector, then a fire
    # two detectors confirm (one incident).
    confirmed = AlertEvent(
        Action.raise_,
        "fire",
        "fire.confirmed",
        "fire",
        "fire-1",
        0,
        T0,
        Severity.critical,
        "temp_c 80 >= 57 at 2 detectors",
        partners=("fire-2",),
    )
    raised = await AlertStore(sessions).apply([fire_event("fire-2", "fire.smoke"), confirmed])
    assert raised[-1].alert.incident_id is not None
    plan = await post("/api/v1/routes/plan", {"depot_id": DEPOT["id"]})
    hook = await post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "secret": "s" * 16})
    token = await post("/api/v1/tokens", {"name": "spare", "role": "crew"})
    incidents = [c.alert.incident_id for c in raised if c.alert.incident_id is not None]
    return {
        "device": [d[0] for d in FIRE + BINS],
        "bin": [b[0] for b in BINS],
        "gateway": [GATEWAY["id"]],
        "station": [DEPOT["id"], FIRE_STATION["id"]],
        "alert": [change.alert.id for change in raised],
        "incident": list(incidents),
        "plan": [plan["id"]],
        "route": [route["id"] for route in plan["routes"]],
        "webhook": [hook["id"]],
        "token": [token["id"]],
        "profile": list(profiles.library().ids()),  # installed files, not rows
    }


@pytest.fixture(scope="module")
def served(
    role: Role, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The role's app on its own database, and that database's seeded state."""
    folder = tmp_path_factory.mktemp(f"fuzz-{role.value}")
    seeded, live = folder / "seeded.sqlite3", folder / "sigap.sqlite3"
    shutil.copyfile(sqlite_template, seeded)
    ids, token = asyncio.run(_seeded(f"sqlite+aiosqlite:///{seeded}", role))
    SEEDED.clear()
    SEEDED.update(ids)
    assert not seeded.with_name(seeded.name + "-wal").exists()  # all of it in the file
    shutil.copyfile(seeded, live)
    # An engine of its own: schemathesis runs the app in an event loop of its own, and a
    # pooled connection belongs to the loop that opened it (the seed's is disposed of).
    engine = make_engine(f"sqlite+aiosqlite:///{live}")
    app = create_app(services=_services(async_sessionmaker(engine, expire_on_commit=False)))
    yield Served(Fuzzed(app, {"Authorization": f"Bearer {token}"}), engine, seeded, live)
    SEEDED.clear()
    asyncio.run(engine.dispose())


@dataclass(frozen=True)
class Served:
    """A role's app, its engine, the seeded database and the one the app uses."""

    fuzzed: Fuzzed
    engine: AsyncEngine
    seeded: Path
    live: Path


@pytest.fixture
def fuzzed(served: Served) -> Fuzzed:
    """The role's app, its database put back to the seeded rows: each operation starts
    from the same state (a DELETE fuzzed before cannot take away what a GET fuzzed after
    should find). Within an operation the examples see what the ones before them
    changed; no check depends on that state."""
    asyncio.run(served.engine.dispose())  # no connection left on the file
    for journal in ("-wal", "-shm"):
        served.live.with_name(served.live.name + journal).unlink(missing_ok=True)
    shutil.copyfile(served.seeded, served.live)
    return served.fuzzed


@dataclass(frozen=True)
class Fuzzed:
    """The app under test and the headers that make a request the role's."""

    app: FastAPI
    headers: dict[str, str]


class NoReadings:
    """The reading store (InfluxDB in production, not in this tier): it holds none."""

    async def readings(
        self, device_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """No readings of any device."""
        return []


# A district in a haze, as the rule engine would show it (GET /haze).
HAZY = RegionHaze(
    region="Baamang",
    detectors=12,
    stations=1,
    level_pct_m=1.2,
    pm25_ugm3=310.0,
    pm25_source="stations",
    outdoor_obscuration_pct_m=0.25,
    visibility_m=1577,
    ispu=360,
    category="berbahaya",
    trend="rising",
    alert=True,
    checked_ms=to_ms(NOW),
)


def _services(sessions: async_sessionmaker[AsyncSession]) -> ApiServices:
    stations = StationRegistry(sessions)
    services = api_services(
        sessions,
        stations=stations,
        accounts=InMemoryAccounts(),
        readings=NoReadings(),
        haze=lambda: [HAZY],
    )
    full = {b[0]: BinStatus(95.0, 2.0, 0.0, 2, to_ms(NOW)) for b in BINS}
    services.routes = RouteService(
        sessions,
        stations,
        services.devices,
        services.alerts,
        bin_status=full.get,
        config=RouteConfig(max_time_limit_s=0.2),
        clock=lambda: NOW,
    )
    # The seeded webhook posts to loopback (allowlisted); fuzzed host names never reach DNS.
    services.webhooks = WebhookOutbox(
        sessions, policy=EgressPolicy(["127.0.0.1/32"], resolver=_no_dns)
    )
    return services


async def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"{host}: no DNS in the fuzz tests")


async def _seeded(url: str, role: Role) -> tuple[Ids, str]:
    engine = make_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    services = _services(sessions)
    assert services.webhooks is not None
    await services.webhooks.load()
    transport = httpx.ASGITransport(app=create_app(services=services))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=ADMIN_HEADERS
        ) as client:
            ids = await seed(client, sessions)
        if role is Role.admin:
            token = TEST_ADMIN_TOKEN  # cannot be revoked: DELETE /tokens/{id} leaves it
        else:
            issued = await TokenStore(sessions).issue(
                TokenCreate(name=f"fuzz-{role.value}", role=role), "fuzz"
            )
            token = issued.token
    finally:
        await engine.dispose()
    return ids, token


def _schema(coverage: bool) -> schemathesis.BaseSchema:
    """The app's OpenAPI document (it does not depend on the services) as schemathesis's."""
    config = schemathesis.Config.from_dict(
        {
            # With the coverage phase (boundary and invalid values of every parameter and
            # field, deterministic) or without (then only the generated examples). Not the
            # `unexpected-methods` it would send each path for `unsupported_method` (405):
            # not one of CHECKS.
            "phases": {"coverage": {"enabled": coverage, "unexpected-methods": []}},
        }
    )
    document = create_app().openapi()
    return schemathesis.openapi.from_dict(document, config=config).exclude(
        # The Server-Sent Events stream never ends, so there is no response to check (it
        # has tests of its own). The console's /console/session is in: sent without a
        # cookie, as an API client would, it must refuse as documented.
        path="/api/v1/alerts/stream",
    )


# The admin passes every role check, so the coverage phase's thousands of cases reach
# every handler as admin; the other roles run the same handlers (or get their 403), with
# the generated examples only: the module stays within about a minute.
ADMIN_SCHEMA = _schema(coverage=True)
ROLES_SCHEMA = _schema(coverage=False)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
# Path parameters and body fields by name -> the kind of seeded row that may stand in.
KNOWN = {
    "device_id": "device",
    "bin_id": "bin",
    "gateway_id": "gateway",
    "station_id": "station",
    "depot_id": "station",
    "alert_id": "alert",
    "incident_id": "incident",
    "plan_id": "plan",
    "route_id": "route",
    "webhook_id": "webhook",
    "token_id": "token",
    "profile_id": "profile",
}
# The seeded ids by kind, set by `fuzzed` for the role's run (hooks have no fixtures).
SEEDED: Ids = {}


def _aimed(values: Any) -> st.SearchStrategy[Any]:
    """The generated values, or now and then a seeded id in their place: GET-by-id paths
    then find a row, and writes change one, rather than all answering 404."""
    if not isinstance(values, dict):
        return st.just(values)
    choices = {
        name: st.sampled_from([value, *SEEDED.get(KNOWN.get(name, ""), [])])
        for name, value in values.items()
    }
    return st.fixed_dictionaries(choices)


def flatmap_path_parameters(_context: schemathesis.HookContext, values: Any) -> Any:
    """Schemathesis hook: path parameters, now and then a seeded id."""
    return _aimed(values)


def flatmap_body(_context: schemathesis.HookContext, body: Any) -> Any:
    """Schemathesis hook: body fields naming a row (depot_id), now and then a seeded one."""
    return _aimed(body)


for _fuzzed_schema in (ADMIN_SCHEMA, ROLES_SCHEMA):
    _fuzzed_schema.hook(flatmap_path_parameters)
    _fuzzed_schema.hook(flatmap_body)

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same examples on every run: a failure is not luck
    deadline=None,  # the bound is on each response (MAX_RESPONSE_S), not on the example
    database=None,  # no local example database: a run depends on the code alone
    # The `fuzzed` fixture is module-scoped (one seeded database per role), and the
    # generated data is what it is: nothing for the health checks to catch here.
    suppress_health_check=list(HealthCheck),
)


def _call_and_check(case: Case[Any], fuzzed: Fuzzed) -> None:
    """Send the case as the role; the response must be no 5xx, within MAX_RESPONSE_S, and
    as the OpenAPI document says (status, content type, body)."""
    started = time.perf_counter()
    # Copies: schemathesis adds its own headers to the dict it is given.
    response = case.call(app=fuzzed.app, headers=dict(fuzzed.headers))
    elapsed = time.perf_counter() - started
    case.validate_response(response, checks=CHECKS, headers=dict(fuzzed.headers))
    assert elapsed < MAX_RESPONSE_S, (
        f"{case.method} {case.formatted_path} took {elapsed:.2f} s (bound {MAX_RESPONSE_S} s)"
    )


@pytest.mark.parametrize("role", [Role.admin], ids=["admin"], indirect=True)
@ADMIN_SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_api_fuzz_as_admin(case: Case[Any], fuzzed: Fuzzed) -> None:
    _call_and_check(case, fuzzed)


OTHER_ROLES = [role for role in Role if role is not Role.admin]


@pytest.mark.parametrize("role", OTHER_ROLES, ids=[r.value for r in OTHER_ROLES], indirect=True)
@ROLES_SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_api_fuzz_by_role(case: Case[Any], fuzzed: Fuzzed) -> None:
    _call_and_check(case, fuzzed)
