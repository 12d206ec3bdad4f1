"""/api/v1/routes in-process on SQLite: planning, routes with GeoJSON, crews' done and
skipped stops, confirmation and flagging from the bins' next readings, burning bins, and
the per-shift schedule."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.bins import BinStatus
from contract.timeutil import to_ms
from dashboard_api.access import ADMIN_TOKEN_NAME
from dashboard_api.app import create_app
from dashboard_api.deps import ApiServices
from devices.registry import DeviceRegistry
from devices.schemas import DeviceCreate
from dispatch.broadcast import AlertBroadcaster
from dispatch.stations.registry import StationRegistry
from dispatch.stations.schemas import WIB, StationCreate
from dispatch.store import AlertStore
from ingest.rejected import RejectedStore
from pickup_routes.planner import PlanOptions
from pickup_routes.problem import PlanProblem, PlanResult
from pickup_routes.schedule import RouteScheduler
from pickup_routes.service import RouteConfig, RouteService
from rules.events import Action, AlertEvent, Severity
from tests.unit.conftest import ADMIN_HEADERS, DEPOT, auth_for_tests

# 05:00 WIB on 2026-11-27; the depot's 06:00-14:00 WIB shift is 23:00Z to 07:00Z.
NOW = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
SHIFT_START = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
SHIFT_END = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
READ = to_ms(NOW - timedelta(minutes=10))  # the bins' latest readings

BINS = {  # id: (lat, lon)
    "bin-01": (-2.5210, 112.9560),
    "bin-02": (-2.5300, 112.9600),
    "bin-03": (-2.5180, 112.9450),
    "bin-04": (-2.5250, 112.9400),
    "bin-05": (-2.5320, 112.9500),
    "bin-06": (-2.5150, 112.9520),
}


@dataclass
class World:
    """The API, its services, the bins' rule-engine state and a settable clock."""

    client: httpx.AsyncClient
    services: ApiServices
    routes: RouteService
    statuses: dict[str, BinStatus] = field(default_factory=dict)
    now: list[datetime] = field(default_factory=lambda: [NOW])

    def at(self, moment: datetime) -> None:
        self.now[0] = moment

    async def burn(self, bin_id: str) -> None:
        await self.services.alerts.apply(
            [
                AlertEvent(
                    Action.raise_,
                    "bin.fire",
                    "bin.fire",
                    "fire",
                    bin_id,
                    0,
                    to_ms(self.now[0]),
                    Severity.critical,
                    "bin on fire: temp_c 74 >= 60",
                )
            ]
        )

    async def plan(self, **changes: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/routes/plan", json={"depot_id": "depot-baamang"} | changes
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[World]:
    async def readiness() -> dict[str, str | None]:
        return {}

    stations = StationRegistry(sessions)
    devices = DeviceRegistry(sessions)
    alerts = AlertStore(sessions)
    statuses: dict[str, BinStatus] = {
        "bin-01": BinStatus(95.0, 2.0, 0.0, 2, READ),  # full
        "bin-02": BinStatus(92.0, None, 0.0, 2, READ),  # full, not filling any more
        "bin-03": BinStatus(70.0, 4.0, 5.0, 0, READ),  # full in 5 h: during the shift
        "bin-04": BinStatus(30.0, 2.0, 30.0, 0, READ),  # full in 30 h: not now
        "bin-05": BinStatus(97.0, 1.0, 0.0, 2, READ),  # full, and (below) burning
        # bin-06 has not reported since the engine started
    }
    now = [NOW]
    routes = RouteService(
        sessions,
        stations,
        devices,
        alerts,
        bin_status=statuses.get,
        config=RouteConfig(max_time_limit_s=0.3),
        clock=lambda: now[0],
    )
    services = ApiServices(
        devices=devices,
        alerts=alerts,
        broadcaster=AlertBroadcaster(),
        readings=None,
        rejected=RejectedStore(sessions),
        readiness=readiness,
        last_seen=lambda _id: None,
        stations=stations,
        routes=routes,
        auth=auth_for_tests(sessions),
    )
    await stations.create(StationCreate.model_validate(DEPOT))
    for bin_id, (lat, lon) in BINS.items():
        await devices.create(
            DeviceCreate(id=bin_id, kind="bin", lat=lat, lon=lon, depth_mm=1100)  # type: ignore[arg-type]
        )
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=ADMIN_HEADERS
    ) as client:
        w = World(client, services, routes, statuses, now)
        await w.burn("bin-05")
        yield w


def stops_of(plan: dict[str, Any]) -> dict[str, tuple[int, dict[str, Any]]]:
    """bin id -> (route id, stop) over a plan's routes."""
    return {s["bin_id"]: (r["id"], s) for r in plan["routes"] for s in r["stops"]}


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


async def test_plan_selects_full_and_soon_full_bins(world: World) -> None:
    plan = await world.plan(by="pak Rahmat")
    assert plan["trigger"] == "api" and plan["by"] == "pak Rahmat"
    assert parse(plan["shift_start"]) == SHIFT_START
    assert parse(plan["start_at"]) == SHIFT_START and parse(plan["end_at"]) == SHIFT_END
    assert parse(plan["window_end"]) == SHIFT_END
    assert plan["distance_source"] == "great_circle" and plan["trucks"] == 3
    stops = stops_of(plan)
    assert sorted(stops) == ["bin-01", "bin-02", "bin-03"]
    assert {b: s["why"] for b, (_, s) in stops.items()} == {
        "bin-01": "full",
        "bin-02": "full",
        "bin-03": "predicted_full",
    }
    assert {e["bin_id"]: e["reason"] for e in plan["excluded"]} == {
        "bin-04": "not_due",
        "bin-05": "burning",
        "bin-06": "no_reading",
    }
    assert plan["unserved"] == []
    assert plan["distance_m"] == pytest.approx(sum(r["distance_m"] for r in plan["routes"]))


async def test_route_has_ordered_stops_etas_loads_and_geojson(world: World) -> None:
    plan = await world.plan()
    route_id = plan["routes"][0]["id"]
    response = await world.client.get(f"/api/v1/routes/{route_id}")
    assert response.status_code == 200
    route = response.json()
    assert route == plan["routes"][0]
    assert route["status"] == "planned" and route["flagged"] is False
    stops = route["stops"]
    assert [s["seq"] for s in stops] == list(range(1, len(stops) + 1))
    etas = [parse(s["eta"]) for s in stops]
    assert etas == sorted(etas)
    assert etas[0] > SHIFT_START and etas[-1] < SHIFT_END
    duration = timedelta(seconds=route["duration_s"])
    assert SHIFT_START + duration <= SHIFT_END
    for stop in stops:
        assert stop["status"] == "planned"
        assert stop["expected_fill_pct"] >= stop["fill_pct"]
        assert stop["expected_load_l"] == pytest.approx(660 * stop["expected_fill_pct"] / 100, 0.01)
    assert route["load_l"] == pytest.approx(sum(s["expected_load_l"] for s in stops))
    assert route["load_l"] <= route["capacity_l"] == 12_000
    assert route["distance_m"] > sum(s["leg_m"] for s in stops)  # and the way back

    geo = route["geojson"]
    assert geo["type"] == "FeatureCollection"
    lines = [f for f in geo["features"] if f["geometry"]["type"] == "LineString"]
    points = [f for f in geo["features"] if f["geometry"]["type"] == "Point"]
    assert len(lines) == 1 and len(points) == len(stops) + 1
    path = lines[0]["geometry"]["coordinates"]
    depot = [DEPOT["lon"], DEPOT["lat"]]  # GeoJSON positions are [lon, lat]
    assert path[0] == depot and path[-1] == depot
    assert path[1:-1] == [[s["lon"], s["lat"]] for s in stops]
    assert all(f["type"] == "Feature" and "properties" in f for f in geo["features"])
    stop_points = [p for p in points if p["properties"]["role"] == "stop"]
    assert [p["properties"]["bin_id"] for p in stop_points] == [s["bin_id"] for s in stops]
    assert all(len(p["geometry"]["coordinates"]) == 2 for p in points)


async def test_capacity_leaves_predicted_bins_unserved(world: World) -> None:
    # bin-01 and bin-02 take 660 + 607 L by the shift end; bin-03 would need 660 more.
    plan = await world.plan(trucks=1, truck_capacity_l=1_300)
    assert sorted(stops_of(plan)) == ["bin-01", "bin-02"]
    (unserved,) = plan["unserved"]
    assert unserved["bin_id"] == "bin-03" and unserved["why"] == "predicted_full"
    assert unserved["load_l"] == 660.0
    assert "no truck had room or time left" in unserved["reason"]
    assert plan["routes"][0]["load_l"] <= 1_300
    again = await world.client.get(f"/api/v1/routes/plans/{plan['id']}")
    assert again.json() == plan


async def test_a_supplied_distance_matrix_is_used(world: World) -> None:
    ids = ["depot-baamang", "bin-01", "bin-02", "bin-03"]
    far = 50_000.0
    metres = [[0.0 if i == j else far for j in range(4)] for i in range(4)]
    # Only depot -> bin-03 -> bin-01 -> bin-02 -> depot is short.
    metres[0][3], metres[3][1], metres[1][2], metres[2][0] = 500.0, 700.0, 900.0, 1_100.0
    plan = await world.plan(trucks=1, distance_matrix={"ids": ids, "metres": metres})
    assert plan["distance_source"] == "matrix"
    (route,) = plan["routes"]
    assert [s["bin_id"] for s in route["stops"]] == ["bin-03", "bin-01", "bin-02"]
    assert [s["leg_m"] for s in route["stops"]] == [500.0, 700.0, 900.0]
    assert route["distance_m"] == plan["distance_m"] == 3_200.0


async def test_bins_missing_from_the_matrix_are_unserved(world: World) -> None:
    ids = ["depot-baamang", "bin-01", "bin-02"]
    metres = [[0, 800, 900], [800, 0, 300], [900, 300, 0]]
    plan = await world.plan(distance_matrix={"ids": ids, "metres": metres})
    assert sorted(stops_of(plan)) == ["bin-01", "bin-02"]
    assert [(u["bin_id"], u["reason"]) for u in plan["unserved"]] == [
        ("bin-03", "not in the supplied distance matrix")
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"depot_id": "depot-nowhere"}, 404, "depot 'depot-nowhere' is not registered"),
        (
            {"distance_matrix": {"ids": ["bin-01", "bin-02"], "metres": [[0, 1], [1, 0]]}},
            422,
            "must include the depot",
        ),
        (
            {"distance_matrix": {"ids": ["depot-baamang", "bin-01"], "metres": [[0, 1]]}},
            422,
            "metres must be 2 x 2",
        ),
        (
            {"distance_matrix": {"ids": ["a", "b"], "metres": [[0, -1], [1, 0]]}},
            422,
            "finite values >= 0",
        ),
        ({"bin_ids": ["bin-01", "bin-99"]}, 422, "not registered bins: bin-99"),
        (
            {"start": "2026-11-27T08:00:00+07:00", "end": "2026-11-27T07:00:00+07:00"},
            422,
            "end must be after start",
        ),
        ({"start": "2026-11-27T08:00:00"}, 422, "timezone"),
        ({"trucks": 0}, 422, "greater than or equal to 1"),
        ({"colour": "green"}, 422, "Extra inputs are not permitted"),
    ],
)
async def test_plan_errors(world: World, body: dict[str, Any], status: int, message: str) -> None:
    response = await world.client.post(
        "/api/v1/routes/plan", json={"depot_id": "depot-baamang"} | body
    )
    assert response.status_code == status, response.text
    assert message in response.text


async def test_a_fire_station_is_not_a_depot(world: World) -> None:
    assert world.services.stations is not None
    await world.services.stations.create(
        StationCreate(id="damkar", kind="fire_station", lat=-2.54, lon=112.95)  # type: ignore[arg-type]
    )
    response = await world.client.post("/api/v1/routes/plan", json={"depot_id": "damkar"})
    assert response.status_code == 422 and "not a depot" in response.text


async def test_plan_from_a_given_start(world: World) -> None:
    # An extra afternoon run: trucks leave at 13:00 WIB for a shift-long route; the window
    # (the shift length) ends at 21:00 WIB, long before bin-04 fills (in 30 h).
    start = datetime(2026, 11, 27, 13, 0, tzinfo=WIB)
    plan = await world.plan(start=start.isoformat())
    assert parse(plan["start_at"]) == start
    assert parse(plan["end_at"]) == start + timedelta(hours=8)
    assert "bin-04" not in stops_of(plan)


async def test_a_longer_collection_window_takes_more_bins(world: World) -> None:
    assert world.services.stations is not None
    await world.services.stations.create(
        StationCreate.model_validate(
            DEPOT | {"id": "depot-daily", "collection_window_h": 36, "lat": -2.5263}
        )
    )
    plan = await world.plan(depot_id="depot-daily", bin_ids=["bin-03", "bin-04"])
    assert sorted(stops_of(plan)) == ["bin-03", "bin-04"]


async def test_bins_on_a_running_route_are_not_planned_twice(world: World) -> None:
    first = await world.plan()
    second = await world.plan()
    assert second["routes"] == []
    on_route = {e["bin_id"]: e["route_id"] for e in second["excluded"] if e["reason"] == "on_route"}
    assert on_route == {b: route_id for b, (route_id, _) in stops_of(first).items()}
    # After the shift the old route no longer holds them (and by the end of tomorrow's
    # shift bin-04 is due too).
    world.at(SHIFT_END + timedelta(hours=1))
    third = await world.plan()
    assert sorted(stops_of(third)) == ["bin-01", "bin-02", "bin-03", "bin-04"]


async def test_done_and_skipped_stops(world: World) -> None:
    plan = await world.plan()
    stops = stops_of(plan)
    route_id, _ = stops["bin-01"]
    base = f"/api/v1/routes/{route_id}/stops"
    world.at(SHIFT_START + timedelta(hours=1))

    done = await world.client.post(f"{base}/bin-01/done", json={"by": "crew 1"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.json()["by"] == "crew 1"
    assert parse(done.json()["done_at"]) == SHIFT_START + timedelta(hours=1)
    again = await world.client.post(f"{base}/bin-01/done")
    assert again.status_code == 409 and "is done" in again.json()["detail"]
    skip_done = await world.client.post(f"{base}/bin-01/skip", json={"reason": "x"})
    assert skip_done.status_code == 409

    other_route, _ = stops["bin-02"]
    skip_url = f"/api/v1/routes/{other_route}/stops/bin-02/skip"
    no_reason = await world.client.post(skip_url, json={})
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    empty_reason = await world.client.post(skip_url, json={"reason": ""})
    assert empty_reason.status_code == 422
    skipped = await world.client.post(
        skip_url, json={"reason": "blocked by a parked car", "by": "crew 2"}
    )
    assert skipped.status_code == 200
    assert skipped.json()["status"] == "skipped"
    assert skipped.json()["skip_reason"] == "blocked by a parked car"
    done_skipped = await world.client.post(f"/api/v1/routes/{other_route}/stops/bin-02/done")
    assert done_skipped.status_code == 409 and "is skipped" in done_skipped.text
    assert (
        await world.client.post(
            f"/api/v1/routes/{other_route}/stops/bin-02/skipped", json={"reason": "again"}
        )
    ).status_code == 409  # the alias path

    unknown_bin = await world.client.post(f"{base}/bin-04/done")
    assert unknown_bin.status_code == 404 and "not on route" in unknown_bin.text
    unknown_route = await world.client.post("/api/v1/routes/9999/stops/bin-01/done")
    assert unknown_route.status_code == 404 and "route 9999 not found" in unknown_route.text
    future = await world.client.post(
        f"/api/v1/routes/{stops['bin-03'][0]}/stops/bin-03/done",
        json={"at": (SHIFT_END + timedelta(days=1)).isoformat()},
    )
    assert future.status_code == 422 and "future" in future.text

    route = (await world.client.get(f"/api/v1/routes/{route_id}")).json()
    assert route["status"] in ("in_progress", "completed")
    events = (await world.client.get(f"/api/v1/routes/{route_id}/events")).json()
    assert [(e["bin_id"], e["type"], e["by"]) for e in events if e["bin_id"] == "bin-01"] == [
        ("bin-01", "done", "crew 1")
    ]
    assert (await world.client.get("/api/v1/routes/9999")).status_code == 404
    assert (await world.client.get("/api/v1/routes/plans/9999")).status_code == 404


async def test_a_stop_without_by_is_recorded_under_the_token_s_name(world: World) -> None:
    """Like alert actions: the audit trail names who acted even when the body does not."""
    plan = await world.plan()
    stops = stops_of(plan)
    world.at(SHIFT_START + timedelta(hours=1))
    route_id, _ = stops["bin-01"]
    done = await world.client.post(f"/api/v1/routes/{route_id}/stops/bin-01/done")
    assert done.status_code == 200 and done.json()["by"] == ADMIN_TOKEN_NAME
    other, _ = stops["bin-02"]
    skipped = await world.client.post(
        f"/api/v1/routes/{other}/stops/bin-02/skip", json={"reason": "gate locked"}
    )
    assert skipped.status_code == 200 and skipped.json()["by"] == ADMIN_TOKEN_NAME


async def test_next_readings_confirm_or_flag(world: World) -> None:
    plan = await world.plan()
    stops = stops_of(plan)
    picked_up = SHIFT_START + timedelta(hours=1)
    world.at(picked_up)
    for bin_id in ("bin-01", "bin-02", "bin-03"):
        route_id, _ = stops[bin_id]
        url = f"/api/v1/routes/{route_id}/stops/{bin_id}/done"
        assert (await world.client.post(url)).status_code == 200

    # Readings from before the pickup say nothing.
    assert await world.routes.verify() == {"confirmed": 0, "flagged": 0, "skipped_burning": 0}

    after = to_ms(picked_up) + 120_000
    world.statuses["bin-01"] = BinStatus(4.0, None, None, 0, after)  # emptied
    world.statuses["bin-02"] = BinStatus(88.0, None, 0.0, 2, after)  # still full
    world.at(picked_up + timedelta(minutes=5))
    assert await world.routes.verify() == {"confirmed": 1, "flagged": 1, "skipped_burning": 0}

    one = (await world.client.get(f"/api/v1/routes/{stops['bin-01'][0]}")).json()
    confirmed = next(s for s in one["stops"] if s["bin_id"] == "bin-01")
    assert confirmed["status"] == "done" and confirmed["fill_after_pct"] == 4.0
    assert parse(confirmed["confirmed_at"]) == picked_up + timedelta(minutes=2)

    flagged_route = (await world.client.get(f"/api/v1/routes/{stops['bin-02'][0]}")).json()
    assert flagged_route["flagged"] is True
    flagged = next(s for s in flagged_route["stops"] if s["bin_id"] == "bin-02")
    assert flagged["status"] == "flagged" and flagged["fill_after_pct"] == 88.0
    assert "not emptied: fill_pct 88.0 >= 30" in flagged["flag_reason"]
    listed = (await world.client.get("/api/v1/routes", params={"flagged": "true"})).json()
    assert [r["id"] for r in listed] == [stops["bin-02"][0]]
    clean = (await world.client.get("/api/v1/routes", params={"flagged": "false"})).json()
    assert stops["bin-02"][0] not in [r["id"] for r in clean]

    # Nothing new: nothing changes. A later reading showing it emptied confirms it.
    assert await world.routes.verify() == {"confirmed": 0, "flagged": 0, "skipped_burning": 0}
    world.statuses["bin-02"] = BinStatus(6.0, None, None, 0, after + 600_000)
    assert (await world.routes.verify())["confirmed"] == 1
    assert (await world.client.get("/api/v1/routes", params={"flagged": "true"})).json() == []

    # bin-03 never reports again: flagged once the check window (24 h) has passed.
    world.at(picked_up + timedelta(hours=25))
    assert (await world.routes.verify())["flagged"] == 1
    route3 = (await world.client.get(f"/api/v1/routes/{stops['bin-03'][0]}")).json()
    stop3 = next(s for s in route3["stops"] if s["bin_id"] == "bin-03")
    assert stop3["status"] == "flagged"
    assert stop3["flag_reason"] == "no fill reading within 24 h after the pickup"


async def test_a_flagged_stop_can_be_done_again(world: World) -> None:
    plan = await world.plan()
    route_id, _ = stops_of(plan)["bin-02"]
    url = f"/api/v1/routes/{route_id}/stops/bin-02/done"
    world.at(SHIFT_START + timedelta(hours=1))
    await world.client.post(url)
    world.statuses["bin-02"] = BinStatus(91.0, None, 0.0, 2, to_ms(world.now[0]) + 60_000)
    world.at(SHIFT_START + timedelta(hours=2))
    await world.routes.verify()
    redone = await world.client.post(url, json={"by": "crew 1, second visit"})
    assert redone.status_code == 200
    assert redone.json()["status"] == "done" and redone.json()["flag_reason"] is None


async def test_a_bin_that_catches_fire_leaves_the_route(world: World) -> None:
    plan = await world.plan()
    route_id, _ = stops_of(plan)["bin-03"]
    await world.burn("bin-03")
    counts = await world.routes.verify()
    assert counts["skipped_burning"] == 1
    route = (await world.client.get(f"/api/v1/routes/{route_id}")).json()
    stop = next(s for s in route["stops"] if s["bin_id"] == "bin-03")
    assert stop["status"] == "skipped" and stop["by"] == "sigap"
    assert stop["skip_reason"].startswith("bin on fire (alert ")


async def test_route_list_filters(world: World) -> None:
    plan = await world.plan(trucks=1)
    (route,) = plan["routes"]
    by_depot = await world.client.get("/api/v1/routes", params={"depot_id": "depot-baamang"})
    assert [r["id"] for r in by_depot.json()] == [route["id"]]
    assert (await world.client.get("/api/v1/routes", params={"depot_id": "x"})).json() == []
    planned = await world.client.get("/api/v1/routes", params={"status": "planned"})
    assert [r["id"] for r in planned.json()] == [route["id"]]
    first_bin = route["stops"][0]["bin_id"]
    world.at(SHIFT_START + timedelta(minutes=30))
    await world.client.post(f"/api/v1/routes/{route['id']}/stops/{first_bin}/done")
    running = await world.client.get("/api/v1/routes", params={"status": "in_progress"})
    assert [r["id"] for r in running.json()] == [route["id"]]
    assert (await world.client.get("/api/v1/routes", params={"status": "planned"})).json() == []
    for stop in route["stops"][1:]:
        await world.client.post(f"/api/v1/routes/{route['id']}/stops/{stop['bin_id']}/done")
    done = await world.client.get("/api/v1/routes", params={"status": "completed"})
    assert [r["id"] for r in done.json()] == [route["id"]]
    assert (await world.client.get("/api/v1/routes", params={"status": "nope"})).status_code == 422


async def test_bins_go_to_their_nearest_depot(world: World) -> None:
    assert world.services.stations is not None
    # A second depot right next to bin-03 and bin-04 (north-west of the first).
    await world.services.stations.create(
        StationCreate.model_validate(DEPOT | {"id": "depot-nw", "lat": -2.5220, "lon": 112.9410})
    )
    main = await world.plan()
    north_west = await world.plan(depot_id="depot-nw")
    assert sorted(stops_of(main)) == ["bin-01", "bin-02"]
    assert sorted(stops_of(north_west)) == ["bin-03"]
    assert {e["bin_id"] for e in north_west["excluded"]} == {"bin-04"}


async def test_scheduled_planning_runs_once_per_shift(world: World) -> None:
    routes = world.routes
    assert await routes.plan_shift("depot-baamang") is None  # 05:00 WIB: not due until 05:30
    world.at(datetime(2026, 11, 27, 5, 30, tzinfo=WIB))
    plan = await routes.plan_shift("depot-baamang")
    assert plan is not None and plan.trigger == "schedule" and plan.by == "sigap"
    assert plan.shift_start == SHIFT_START and plan.start_at == SHIFT_START
    assert sorted(b for r in plan.routes for b in (s.bin_id for s in r.stops)) == [
        "bin-01",
        "bin-02",
        "bin-03",
    ]
    world.at(datetime(2026, 11, 27, 7, 0, tzinfo=WIB))  # a restart during the shift
    assert await routes.plan_shift("depot-baamang") is None
    assert await routes.plan_shift("depot-nowhere") is None


async def test_each_depot_gets_a_planning_job(world: World) -> None:
    scheduler = AsyncIOScheduler(timezone=UTC)
    jobs = RouteScheduler(scheduler, world.routes, verify_interval_s=60)
    assert world.services.stations is not None
    jobs.start(await world.services.stations.find())
    job = scheduler.get_job("routes.plan.depot-baamang")
    assert job is not None
    # Planned 30 minutes (the default lead) before the 06:00 WIB shift start.
    assert job.trigger.get_next_fire_time(None, NOW) == datetime(2026, 11, 27, 5, 30, tzinfo=WIB)
    assert scheduler.get_job("routes.verify") is not None
    assert scheduler.get_job("routes.catch_up.depot-baamang") is not None
    fire = StationCreate(id="damkar", kind="fire_station", lat=-2.54, lon=112.95)  # type: ignore[arg-type]
    jobs.sync(await world.services.stations.create(fire))
    assert scheduler.get_job("routes.plan.damkar") is None


async def test_stopping_cancels_a_plan_in_progress(world: World) -> None:
    searching = asyncio.Event()

    async def never_done(problem: PlanProblem, options: PlanOptions) -> PlanResult:
        searching.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    routes = dataclasses.replace(world.routes, solver=never_done)
    jobs = RouteScheduler(AsyncIOScheduler(timezone=UTC), routes, verify_interval_s=60)
    world.at(datetime(2026, 11, 27, 5, 30, tzinfo=WIB))
    job = asyncio.create_task(jobs.plan("depot-baamang"))
    await searching.wait()
    await jobs.stop()
    assert job.done() and not job.cancelled()  # ended quietly, nothing for apscheduler to log
    # Nothing was stored, so the next start plans the shift after all.
    assert (await world.client.get("/api/v1/routes")).json() == []
