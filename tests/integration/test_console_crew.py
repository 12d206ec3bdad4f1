"""The waste crew's view of the console in a real browser against the real stack: a depot
and its bins registered through the API, bins filled by readings over MQTT, routes planned
with the console's button, and stops marked done and skipped with one tap each.

One `sigap up` serves the whole module (start_console_stack); the tests run in file order
and build on each other's routes. Screenshots land in artifacts/console/crew-<lang>-<width>.png."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.integration.console_page import (
    PHONE,
    WALL,
    Pages,
    audit_texts,
    catalogue,
    i18n_elements,
    screenshot,
    set_language,
    sign_in,
    template_matches,
)
from tests.integration.console_stack import (
    ROLE_NAMES,
    ConsoleStack,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CREW_VIEW = "[data-testid=view-crew]"
CREW_TAB = "a[data-view=crew]"
DEPOT = "#crew-depot"
TRUCK = "#crew-truck"
STOP = "li[data-testid=stop]"
DONE = "button[data-stop-action=done]"
SKIP = "button[data-stop-action=skip]"
SKIP_DIALOG = "dialog[data-testid=skip-dialog]"
SKIP_NOTE = "#skip-note"
DUE_BIN = "li[data-testid=due-bin]"
PLAN = "button[data-testid=plan-routes]"
PLAN_RESULT = "[data-testid=plan-result]"

WIB = timezone(timedelta(hours=7))
DEPOT_ID = "depot-konsol-crew"
DEPOT_LAT, DEPOT_LON = -2.5560, 112.9440
TRUCKS = 2
# Three full bins fill a truck (3 x 95 % x 660 L = 1,881 L of 1,980 L): the six full bins
# make two routes of three stops, and the bin predicted to fill up finds no room.
TRUCK_CAPACITY_BINS = 3
FULL_BINS = [
    ("TPS Jl. Jenderal Sudirman", "Mentawa Baru Ketapang", 0.0030, 0.0010),
    ("TPS Pasar Mentaya", "Mentawa Baru Ketapang", 0.0045, -0.0025),
    ("TPS Jl. MT Haryono", "Mentawa Baru Ketapang", 0.0060, 0.0020),
    ("TPS Jl. Tjilik Riwut", "Baamang", -0.0035, 0.0030),
    ("TPS Jl. Ahmad Yani", "Baamang", -0.0050, -0.0015),
    ("TPS Baamang Tengah", "Baamang", -0.0065, 0.0005),
]
PREDICTED_BIN = ("TPS Jl. Pelita", "Baamang", 0.0010, 0.0060)
FULL_PCT = 95.0
# Hourly readings rising 10 %/h: about two hours from full, a 'predicted full' bin.
RISING = [(3, 45.0), (2, 55.0), (1, 65.0), (0, 72.0)]
SKIP_NOTE_TEXT = "mobil pick-up parkir di depan TPS"


@dataclass
class Yard:
    """The stack with one depot and its bins, full or filling."""

    stack: ConsoleStack
    full: list[str]
    predicted: str
    names: dict[str, str]


def register_bin(stack: ConsoleStack, name: str, district: str, dlat: float, dlon: float) -> str:
    """Register a bin near the depot; its id."""
    bin_id = f"bin-crew-{uuid.uuid4().hex[:6]}"
    body = {
        "id": bin_id,
        "kind": "bin",
        "name": name,
        "lat": DEPOT_LAT + dlat,
        "lon": DEPOT_LON + dlon,
        "district": district,
        "depth_mm": 1200,
    }
    with stack.client("admin") as api:
        response = api.post("/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    return bin_id


def fill_up(
    stack: ConsoleStack, bin_id: str, pct: float = FULL_PCT, ago_s: tuple[int, int] = (60, 50)
) -> None:
    """Two readings at `pct`, `ago_s` seconds old: a level change needs bin_confirm_readings
    (2) in a row (and a reading older than the bin's last one moves nothing)."""
    now_ms = time.time() * 1000
    for ago in ago_s:
        stack.publish(bin_id, fill_pct=pct, ts=now_ms - ago * 1000)


def wait_for_bin(
    stack: ConsoleStack, bin_id: str, ok: Any, what: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll /bins/{id} until ok(bin) (readings are evaluated a few ms after the publish)."""
    deadline = time.monotonic() + timeout
    with stack.client("crew") as api:
        while True:
            found: dict[str, Any] = api.get(f"/api/v1/bins/{bin_id}").json()
            if ok(found):
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"bin {bin_id} not {what} after {timeout} s: {found}")
            time.sleep(0.05)  # polling the API for the engine's state; the browser is what is timed


def shift_hhmm(offset: timedelta) -> str:
    """The WIB time of day `offset` from now, as HH:MM."""
    return (datetime.now(UTC) + offset).astimezone(WIB).strftime("%H:%M")


@pytest.fixture(scope="module")
def yard(console_stack: ConsoleStack) -> Yard:
    """`sigap up` with a depot whose next shift starts in two hours (so the schedule, which
    plans 30 minutes ahead, leaves planning to the test), six full bins and a filling one."""
    stack = console_stack
    depot = {
        "id": DEPOT_ID,
        "kind": "waste_depot",
        "name": "Depo Sampah Baamang",
        "lat": DEPOT_LAT,
        "lon": DEPOT_LON,
        "district": "Baamang",
        "trucks": TRUCKS,
        "truck_capacity_bins": TRUCK_CAPACITY_BINS,
        "shift_start": shift_hhmm(timedelta(hours=2)),
        "shift_end": shift_hhmm(timedelta(hours=8)),
    }
    with stack.client("admin") as api:
        response = api.post("/api/v1/stations", json=depot)
    assert response.status_code == 201, response.text
    names: dict[str, str] = {}
    full = []
    for name, district, dlat, dlon in FULL_BINS:
        bin_id = register_bin(stack, name, district, dlat, dlon)
        names[bin_id] = name
        full.append(bin_id)
    predicted = register_bin(stack, *PREDICTED_BIN)
    names[predicted] = PREDICTED_BIN[0]
    for bin_id in full:
        fill_up(stack, bin_id)
    now_ms = time.time() * 1000
    for hours_ago, pct in RISING:
        stack.publish(predicted, fill_pct=pct, ts=now_ms - hours_ago * 3_600_000 - 1000)
    for bin_id in full:
        wait_for_bin(stack, bin_id, lambda b: b["level"] == "full", "full")
    wait_for_bin(
        stack,
        predicted,
        lambda b: b["level"] == "ok" and b["hours_to_full"] and 0 < b["hours_to_full"] < 8,
        "predicted full within 8 h",
    )
    return Yard(stack, full, predicted, names)


def show_crew(page: Page, token: str) -> Locator:
    """Sign in and open the crew view through its tab."""
    sign_in(page, token)
    page.locator(CREW_TAB).click()
    view = page.locator(CREW_VIEW)
    expect(view).to_be_visible()
    return view


def pick(page: Page, truck: int) -> None:
    """Choose the test depot and a truck."""
    page.locator(DEPOT).select_option(DEPOT_ID)
    page.locator(TRUCK).select_option(str(truck))


def shown_stops(page: Page) -> list[str]:
    """The data-bin-id of every stop, in page order."""
    ids: list[str] = page.locator(STOP).evaluate_all("items => items.map(i => i.dataset.binId)")
    return ids


def truck_route(stack: ConsoleStack, truck: int) -> dict[str, Any]:
    """The newest route of a truck of the test depot, from the API."""
    with stack.client("crew") as api:
        routes = api.get("/api/v1/routes", params={"depot_id": DEPOT_ID}).json()
    mine = [r for r in routes if r["truck"] == truck]
    assert mine, f"no route for truck {truck}: {routes}"
    route: dict[str, Any] = max(mine, key=lambda r: r["id"])
    return route


def unexpected_errors(pages: Pages) -> list[str]:
    """Browser errors but the 401 of the session check before signing in."""
    return [e for e in pages.errors if "status of 401" not in e]


def audit_crew(page: Page) -> list[str]:
    """The catalogue audit in Indonesian and English, with the skip dialog open too."""
    ident, en = catalogue("id"), catalogue("en")
    problems: list[str] = []
    for lang in ("id", "en"):
        set_language(page, lang)
        problems += audit_texts(page, lang)
        if lang == "en":
            for element in i18n_elements(page):
                key, text = element["key"], element["text"]
                if (
                    key in ident
                    and ident[key] != en.get(key)
                    and template_matches(ident[key], text)
                ):
                    problems.append(f"[en] {key!r} still shows the Indonesian {text!r}")
        skippable = page.locator(f"{STOP} {SKIP}")
        if skippable.count():
            skippable.first.click()
            dialog = page.locator(SKIP_DIALOG)
            expect(dialog).to_be_visible()
            problems += [f"{p} (skip dialog open)" for p in audit_texts(page, lang)]
            dialog.evaluate("d => d.close()")
            expect(dialog).to_have_count(0)
    set_language(page, "id")
    return list(dict.fromkeys(problems))


def test_crew_plans_the_shift_then_marks_stops_done_and_skipped(yard: Yard, pages: Pages) -> None:
    stack = yard.stack
    name = ROLE_NAMES["crew"]
    page = pages.open()
    view = show_crew(page, stack.tokens["crew"])

    # The supervisor's list: the full bins first, then the one filling up.
    due = len(yard.full) + 1
    expect(page.locator(DUE_BIN)).to_have_count(due)
    expect(page.locator("#crew-hours")).to_have_value("8")
    listed: list[str] = page.locator(DUE_BIN).evaluate_all(
        "items => items.map(i => i.dataset.binId)"
    )
    assert sorted(listed[:-1]) == sorted(yard.full) and listed[-1] == yard.predicted, listed
    expect(page.locator(f'{DUE_BIN}[data-bin-id="{yard.predicted}"]')).to_contain_text("WIB")

    # Plan the depot's shift with the button: two routes, the filling bin left without room.
    depot_row = view.locator(f'li[data-testid=depot][data-depot-id="{DEPOT_ID}"]')
    depot_row.locator(PLAN).click()
    result = depot_row.locator(PLAN_RESULT)
    expect(result).to_be_visible(timeout=30_000)
    expect(result.locator("[data-testid=plan-route]")).to_have_count(TRUCKS)
    unserved = result.locator(f'[data-testid=unserved][data-bin-id="{yard.predicted}"]')
    expect(unserved).to_be_visible()
    # The planner's reason is read back into the catalogue, not shown in English.
    expect(unserved.locator(".reason")).to_have_attribute("data-i18n", "crew.plan.unserved.room")

    route = truck_route(stack, 1)
    order = [s["bin_id"] for s in route["stops"]]
    assert len(order) == TRUCK_CAPACITY_BINS and set(order) <= set(yard.full), route

    # The crew picks its truck: the stops in the route's order, with names and WIB times.
    pick(page, 1)
    expect(page.locator(STOP)).to_have_count(len(order))
    assert shown_stops(page) == order
    first = page.locator(f'{STOP}[data-bin-id="{order[0]}"]')
    second = page.locator(f'{STOP}[data-bin-id="{order[1]}"]')
    expect(first).to_have_attribute("data-status", "planned")
    expect(first.locator(".place")).to_have_text(yard.names[order[0]])
    expect(first).to_contain_text("WIB")
    # And on the map: the route's stops drawn over its path, the depot as a place.
    route_map = page.locator("[data-testid=route-map]")
    expect(route_map).to_have_attribute("data-route-id", str(route["id"]))
    expect(route_map.locator("canvas.map-canvas")).to_have_attribute("data-points", str(len(order)))

    # One tap: done.
    first.locator(DONE).click()
    expect(first).to_have_attribute("data-status", "done")
    expect(first.locator("button")).to_have_count(0)

    # Skip: a reason from the list (one tap) with a note typed first.
    second.locator(SKIP).click()
    dialog = page.locator(SKIP_DIALOG)
    expect(dialog).to_be_visible()
    dialog.locator(SKIP_NOTE).fill(SKIP_NOTE_TEXT)
    dialog.locator("button[data-skip-reason=blocked]").click()
    expect(dialog).to_have_count(0)
    expect(second).to_have_attribute("data-status", "skipped")
    reason = f"{catalogue('id')['crew.skip.reason.blocked']}: {SKIP_NOTE_TEXT}"
    expect(second.locator(".skip-reason")).to_have_text(reason)

    # The API tells the same, under the crew member's name.
    with stack.client("crew") as api:
        after = api.get(f"/api/v1/routes/{route['id']}").json()
        events = api.get(f"/api/v1/routes/{route['id']}/events").json()
    stops = {s["bin_id"]: s for s in after["stops"]}
    assert stops[order[0]]["status"] == "done" and stops[order[0]]["by"] == name, stops
    assert stops[order[0]]["done_at"], stops
    assert stops[order[1]]["status"] == "skipped", stops
    assert stops[order[1]]["skip_reason"] == reason and stops[order[1]]["by"] == name, stops
    assert stops[order[2]]["status"] == "planned", stops
    assert [(e["bin_id"], e["type"], e["by"]) for e in events] == [
        (order[0], "done", name),
        (order[1], "skipped", name),
    ], events
    assert after["status"] == "in_progress", after

    # Every visible word from the catalogue, in both languages, the skip dialog too.
    problems = audit_crew(page)
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(problems)

    saved = []
    for lang, viewport in (("id", WALL), ("id", PHONE), ("en", PHONE), ("en", WALL)):
        page.set_viewport_size({"width": viewport["width"], "height": viewport["height"]})
        set_language(page, lang)
        expect(result).to_be_visible()
        saved.append(screenshot(page, f"crew-{lang}-{viewport['width']}").name)
        if viewport == PHONE and lang == "id":  # the skip dialog on a phone, to look at
            page.locator(f"{STOP} {SKIP}").first.click()
            expect(page.locator(SKIP_DIALOG)).to_be_visible()
            saved.append(screenshot(page, "crew-skip-id-360").name)
            page.locator(SKIP_DIALOG).evaluate("d => d.close()")
    print("saved " + ", ".join(saved))

    # Depot and truck are remembered in this browser.
    page.reload()
    expect(page.locator(CREW_VIEW)).to_be_visible()
    expect(page.locator(DEPOT)).to_have_value(DEPOT_ID)
    expect(page.locator(TRUCK)).to_have_value("1")
    expect(page.locator(STOP)).to_have_count(len(order))
    expect(first).to_have_attribute("data-status", "done")
    expect(second).to_have_attribute("data-status", "skipped")
    assert not unexpected_errors(pages), pages.errors


def test_a_dispatcher_sees_the_route_without_buttons(yard: Yard, pages: Pages) -> None:
    page = pages.open()
    view = show_crew(page, yard.stack.tokens["dispatcher"])
    pick(page, 2)
    route = truck_route(yard.stack, 2)
    expect(page.locator(STOP)).to_have_count(len(route["stops"]))
    assert shown_stops(page) == [s["bin_id"] for s in route["stops"]]
    expect(page.locator(DUE_BIN).first).to_be_visible()
    expect(view.locator("li[data-testid=depot]").first).to_be_visible()
    expect(view.locator("button[data-stop-action]")).to_have_count(0)
    expect(view.locator(PLAN)).to_have_count(0)


def test_a_bin_full_alert_refreshes_the_route_and_the_list(yard: Yard, pages: Pages) -> None:
    stack = yard.stack
    page = pages.open()
    show_crew(page, stack.tokens["crew"])
    pick(page, 2)
    route = truck_route(stack, 2)
    bin_id = route["stops"][-1]["bin_id"]
    stop = page.locator(f'{STOP}[data-bin-id="{bin_id}"]')
    fill_now = stop.locator("dt[data-i18n='crew.stop.fill_now'] + dd")
    expect(fill_now).to_have_text(re.compile(r"^95\s*%$"))

    # The bin is emptied and fills again at once: its bin.full alert clears and is raised
    # again, and the stop shows the fill the engine now has (smoothed, so still low).
    fill_up(stack, bin_id, pct=10.0, ago_s=(40, 30))
    fill_up(stack, bin_id, ago_s=(20, 10))
    expect(fill_now).to_have_text(re.compile(r"^[12]?\d\s*%$"), timeout=10_000)

    # A bin that fills up elsewhere joins the supervisor's list without a reload.
    newcomer = register_bin(stack, "TPS Jl. Kapten Mulyono", "Baamang", -0.0010, -0.0060)
    fill_up(stack, newcomer)
    expect(page.locator(f'{DUE_BIN}[data-bin-id="{newcomer}"]')).to_be_visible(timeout=10_000)


def test_a_truck_with_two_routes_today_shows_the_newest_and_offers_the_other(
    yard: Yard, pages: Pages
) -> None:
    stack = yard.stack
    older = truck_route(stack, 1)
    page = pages.open()
    view = show_crew(page, stack.tokens["crew"])
    pick(page, 1)
    expect(page.locator(STOP)).to_have_count(len(older["stops"]))
    expect(view.locator("#crew-route")).to_have_count(0)

    # An extra plan during the day gives truck 1 a second route (bins not on a pending stop).
    view.locator(f'li[data-testid=depot][data-depot-id="{DEPOT_ID}"] {PLAN}').click()
    chooser = view.locator("#crew-route")
    expect(chooser).to_be_visible(timeout=30_000)
    newer = truck_route(stack, 1)
    assert newer["id"] > older["id"], (older["id"], newer["id"])
    expect(chooser).to_have_value(str(newer["id"]))
    expect(page.locator(STOP)).to_have_count(len(newer["stops"]))
    assert shown_stops(page) == [s["bin_id"] for s in newer["stops"]]

    chooser.select_option(str(older["id"]))
    expect(page.locator(f'{STOP}[data-bin-id="{older["stops"][0]["bin_id"]}"]')).to_have_attribute(
        "data-status", "done"
    )
    assert shown_stops(page) == [s["bin_id"] for s in older["stops"]]
    assert not unexpected_errors(pages), pages.errors
