"""The web console in a real browser (headless Chromium) against the real stack: mosquitto,
influxd and `sigap up` serving the console; readings go in over MQTT as devices send them.

The selectors are the console's DOM contract (tests/integration/console_page.py). Screenshots
land in artifacts/console/ (gitignored): the views in both languages on a phone and a wall
screen, and every open page of a failed test."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.integration.console_page import (
    ACTION,
    ALERT,
    ALERT_LIST,
    BANNER,
    CONFIRM_DISPATCH,
    CONFIRM_RESOLVE,
    DISPATCH_DIALOG,
    FLASHING,
    LANG,
    OUTCOME,
    PHONE,
    RESOLVE_DIALOG,
    SIGN_IN,
    SIGN_IN_ERROR,
    SIGN_OUT,
    STATION,
    TOKEN,
    USER,
    WALL,
    Pages,
    alert_article,
    alert_ids,
    audit_languages,
    audit_texts,
    catalogue,
    forging_page,
    other_site,
    screenshot,
    set_language,
    show_dispatch,
    sign_in,
)
from tests.integration.console_stack import (
    FAR_STATION,
    FIRE_KINDS,
    NEAR_STATION,
    ROLE_NAMES,
    ConsoleStack,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

REFUSED = "cross-site request refused"


def wait_for_stream(page: Page, token: str) -> None:
    """Sign in and wait until the console's live stream answers (its response headers)."""
    with page.expect_response(
        lambda r: "/api/v1/alerts/stream" in r.url and r.status == 200, timeout=10_000
    ):
        sign_in(page, token)
    expect(page.locator(BANNER)).to_be_hidden()


def test_catalogues_have_the_same_keys() -> None:
    ident, en = catalogue("id"), catalogue("en")
    assert sorted(set(ident) - set(en)) == [], "keys in id.json missing from en.json"
    assert sorted(set(en) - set(ident)) == [], "keys in en.json missing from id.json"
    for lang, messages in (("id", ident), ("en", en)):
        blank = [key for key, text in messages.items() if not str(text).strip()]
        assert not blank, f"empty messages in {lang}.json: {blank}"


def test_dispatcher_takes_a_fire_from_raise_to_resolution(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    device = stack.new_detector()
    page = pages.open()
    wait_for_stream(page, stack.tokens["dispatcher"])
    show_dispatch(page)
    expect(page.locator(ALERT_LIST)).to_be_attached()

    # The alert must be on screen within 2 s of the detector's reading leaving it.
    published = time.monotonic()
    stack.publish_fire(device)
    alert = stack.alert_for(device, timeout=2.0)  # only to learn its id
    article = alert_article(page, alert["id"])
    try:
        remaining_ms = (2.0 - (time.monotonic() - published)) * 1000
        article.wait_for(state="visible", timeout=max(remaining_ms, 1))
    except PlaywrightTimeoutError:
        try:  # how late, for the report
            article.wait_for(state="visible", timeout=10_000)
            late = f"it came {time.monotonic() - published:.2f} s after the publish"
        except PlaywrightTimeoutError:
            late = f"not there 10 s later either; articles: {alert_ids(page)}"
        pytest.fail(f"alert {alert['id']} ({alert['kind']}) not shown within 2 s: {late}")
    shown_after = time.monotonic() - published
    print(f"alert article visible {shown_after * 1000:.0f} ms after the publish")
    assert shown_after <= 2.0

    assert alert["kind"] in FIRE_KINDS, alert
    expect(article).to_have_attribute("data-status", "open")
    expect(article).to_have_attribute("data-kind", alert["kind"])
    expect(article).to_have_attribute("data-severity", alert["severity"])
    expect(article).to_have_class(FLASHING)

    article.locator("button[data-action=ack]").click()
    expect(article).to_have_attribute("data-status", "acknowledged")
    expect(article).not_to_have_class(FLASHING)

    article.locator("button[data-action=dispatch]").click()
    dialog = page.locator(DISPATCH_DIALOG)
    expect(dialog).to_be_visible()
    radios = dialog.locator(STATION)
    expect(radios.first).to_be_attached()
    listed: list[str] = radios.evaluate_all("inputs => inputs.map(i => i.value)")
    assert alert["proposed_stations"] == [NEAR_STATION, FAR_STATION], alert
    assert listed[:2] == alert["proposed_stations"], f"stations in the dialog: {listed}"
    labels: list[str] = radios.evaluate_all(
        "inputs => inputs.map(i => ((i.labels && i.labels[0]) || i.closest('label') || {})"
        ".textContent || '')"
    )
    unlabelled = [v for v, text in zip(listed, labels, strict=True) if not re.search(r"\d", text)]
    assert not unlabelled, f"stations without a distance in their label: {unlabelled} {labels}"
    dialog.locator(f'{STATION}[value="{NEAR_STATION}"]').check()
    dialog.locator(CONFIRM_DISPATCH).click()
    expect(article).to_have_attribute("data-status", "dispatched")
    expect(dialog).to_be_hidden()

    article.locator("button[data-action=resolve]").click()
    closing = page.locator(RESOLVE_DIALOG)
    expect(closing).to_be_visible()
    closing.locator(OUTCOME).select_option("false_alarm")
    closing.locator(CONFIRM_RESOLVE).click()
    expect(article).to_have_count(0)
    expect(closing).to_be_hidden()

    # The API tells the same story, under the dispatcher's name.
    name = ROLE_NAMES["dispatcher"]
    with stack.client("dispatcher") as api:
        final = api.get(f"/api/v1/alerts/{alert['id']}").json()
        trail = api.get(f"/api/v1/alerts/{alert['id']}/actions").json()
    assert final["status"] == "false_alarm", final
    assert final["acknowledged_by"] == name and final["acknowledged_at"], final
    assert final["dispatched_by"] == name and final["station_id"] == NEAR_STATION, final
    assert final["resolved_by"] == name and final["resolved_at"], final
    assert [(a["action"], a["by"]) for a in trail] == [
        ("ack", name),
        ("dispatch", name),
        ("resolve", name),
    ], trail
    assert trail[1]["details"]["station_id"] == NEAR_STATION
    assert trail[2]["details"]["outcome"] == "false_alarm"


@pytest.mark.parametrize("role", ["crew", "technician"])
def test_other_roles_see_alerts_without_actions(
    console_stack: ConsoleStack, pages: Pages, role: str
) -> None:
    stack = console_stack
    alert = stack.new_fire()
    page = pages.open()
    sign_in(page, stack.tokens[role])
    expect(page.locator(USER)).to_contain_text(ROLE_NAMES[role])
    show_dispatch(page)
    expect(alert_article(page, alert["id"])).to_be_visible()
    expect(page.locator(f"{ALERT} {ACTION}")).to_have_count(0)


def test_cross_site_post_with_the_session_cookie_is_refused(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    alert = stack.new_fire()
    page = pages.open()
    # A dispatcher's browser with a console session (the cookie) visits another site. The
    # other site is 127.0.0.1 on another port: the same *site* to the browser, so even a
    # SameSite=Strict cookie goes along and only the server's checks stand in the way.
    opened = page.request.post(
        f"{stack.base_url}/console/session", data={"token": stack.tokens["dispatcher"]}
    )
    assert opened.status == 200, opened.text()
    target = f"{stack.base_url}/api/v1/alerts/{alert['id']}/ack"

    def to_target(kind: str) -> Any:
        return lambda r: r.url == target and r.request.resource_type == kind

    with (
        other_site(forging_page(target)) as url,
        page.expect_response(to_target("fetch")) as fetched,
        page.expect_response(to_target("document")) as posted,
    ):
        page.goto(url)
    # The form's raw request headers show the cookie went along (Playwright has no raw
    # headers for a no-cors fetch): the refusal is the server's CSRF check, not a lost login.
    cookie = posted.value.request.all_headers().get("cookie", "")
    assert "sigap_session=" in cookie, "the forged form POST went without the session cookie"
    assert posted.value.status == 403 and REFUSED in posted.value.text(), posted.value.text()
    assert fetched.value.status == 403  # an opaque answer: Chromium keeps no body of it

    with stack.client("dispatcher") as api:
        still = api.get(f"/api/v1/alerts/{alert['id']}").json()
        trail = api.get(f"/api/v1/alerts/{alert['id']}/actions").json()
    assert still["status"] == "open" and still["acknowledged_by"] is None, still
    assert trail == []


def test_cookie_session_needs_the_csrf_header_and_its_own_origin(
    console_stack: ConsoleStack,
) -> None:
    stack = console_stack
    alert = stack.new_fire()
    ack = f"/api/v1/alerts/{alert['id']}/ack"
    with httpx.Client(base_url=stack.base_url, timeout=10.0) as client:
        assert client.post("/console/session", json={"token": "sigap_nope"}).status_code == 401
        assert client.post("/console/session", json={"tok": 1}).status_code == 422
        foreign_login = client.post(
            "/console/session",
            json={"token": stack.tokens["dispatcher"]},
            headers={"Origin": "http://localhost:1"},
        )
        assert foreign_login.status_code == 403, foreign_login.text

        opened = client.post("/console/session", json={"token": stack.tokens["dispatcher"]})
        assert opened.status_code == 200, opened.text
        session = opened.json()
        assert session["name"] == ROLE_NAMES["dispatcher"] and session["role"] == "dispatcher"
        assert session["csrf_token"] and session["expires_at"]
        set_cookie = opened.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
            assert attribute.lower() in set_cookie.lower(), set_cookie
        cookie = {"Cookie": f"sigap_session={opened.cookies['sigap_session']}"}
        client.cookies.clear()  # only the explicit header from here on

        assert client.get("/console/session", headers=cookie).json()["role"] == "dispatcher"
        assert client.get(f"/api/v1/alerts/{alert['id']}", headers=cookie).status_code == 200

        for name, headers in {
            "no CSRF header": cookie,
            "a wrong CSRF header": cookie | {"X-CSRF-Token": "x" + session["csrf_token"]},
            "another origin": cookie
            | {"X-CSRF-Token": session["csrf_token"], "Origin": "http://127.0.0.1:1"},
        }.items():
            refused = client.post(ack, json={}, headers=headers)
            assert refused.status_code == 403, (name, refused.text)
            assert REFUSED in refused.json()["detail"], (name, refused.text)
        with stack.client("dispatcher") as api:
            assert api.get(f"/api/v1/alerts/{alert['id']}").json()["status"] == "open"

        # The same request with the session's CSRF token from its own origin goes through.
        good = cookie | {"X-CSRF-Token": session["csrf_token"], "Origin": stack.base_url}
        done = client.post(ack, json={}, headers=good)
        assert done.status_code == 200, done.text
        assert done.json()["acknowledged_by"] == ROLE_NAMES["dispatcher"]

        assert client.delete("/console/session", headers=cookie).status_code == 403
        assert client.delete("/console/session", headers=good).status_code == 204
        assert client.get("/console/session", headers=cookie).status_code == 401
        assert client.get("/api/v1/alerts", headers=cookie).status_code == 401


def test_wrong_token_is_refused_and_sign_out_ends_the_session(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    page = pages.open()
    page.goto("/")
    token = page.locator(TOKEN)
    expect(token).to_have_attribute("type", "password")
    assert token.evaluate("input => input.labels.length") >= 1, "#token has no <label>"
    token.fill("sigap_not-a-token")
    page.locator(SIGN_IN).click()
    expect(page.locator(SIGN_IN_ERROR)).to_be_visible()
    expect(page.locator(SIGN_IN_ERROR)).not_to_have_text("")
    expect(page.locator(USER)).to_be_hidden()

    sign_in(page, console_stack.tokens["dispatcher"])
    expect(page.locator(USER)).to_contain_text(ROLE_NAMES["dispatcher"])
    page.reload()  # the session outlives the page (a cookie, not script state)
    expect(page.locator(USER)).to_be_visible()
    page.locator(SIGN_OUT).click()
    expect(page.locator(TOKEN)).to_be_visible()
    assert page.request.get("/console/session").status == 401
    page.reload()
    expect(page.locator(TOKEN)).to_be_visible()
    expect(page.locator(USER)).to_be_hidden()


def test_every_visible_text_comes_from_the_catalogue_in_both_languages(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    alert = stack.new_fire()
    page = pages.open()
    sign_in(page, stack.tokens["dispatcher"])
    show_dispatch(page)
    article = alert_article(page, alert["id"])
    expect(article).to_be_visible()

    # Both languages, and nothing in Indonesian left after switching.
    problems = audit_languages(page)
    set_language(page, "en")

    # The dialogs too, in English (a modal dialog leaves the language switch out of reach);
    # closed by script: how they close is not part of the contract.
    article.locator("button[data-action=dispatch]").click()
    dialog = page.locator(DISPATCH_DIALOG)
    expect(dialog).to_be_visible()
    problems += [f"{p} (dispatch dialog open)" for p in audit_texts(page, "en")]
    dialog.evaluate("d => d.close()")
    article.locator("button[data-action=resolve]").click()
    closing = page.locator(RESOLVE_DIALOG)
    expect(closing).to_be_visible()
    problems += [f"{p} (resolve dialog open)" for p in audit_texts(page, "en")]
    closing.evaluate("d => d.close()")

    set_language(page, "id")
    problems += audit_texts(page, "id")
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(dict.fromkeys(problems))


def test_screenshots_of_the_views_in_both_languages(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    alert = stack.new_fire()
    saved: list[str] = []
    for viewport in (PHONE, WALL):
        width = viewport["width"]
        page = pages.open(viewport)  # saved as failed-*.png if the test fails
        for lang in ("id", "en"):
            page.goto("/")
            expect(page.locator(TOKEN)).to_be_visible()
            if page.locator("html").get_attribute("lang") != lang:
                if page.locator(LANG).is_visible():
                    set_language(page, lang)
                else:  # no choice before signing in: choose in the header, sign out
                    sign_in(page, stack.tokens["dispatcher"])
                    set_language(page, lang)
                    page.locator(SIGN_OUT).click()
                    expect(page.locator(TOKEN)).to_be_visible()
            expect(page.locator("html")).to_have_attribute("lang", lang)
            saved.append(screenshot(page, f"signin-{lang}-{width}").name)

            sign_in(page, stack.tokens["dispatcher"])
            show_dispatch(page)
            set_language(page, lang)
            expect(alert_article(page, alert["id"])).to_be_visible()
            saved.append(screenshot(page, f"dispatch-{lang}-{width}").name)
            # The map and the fire's incident page, in the same language and width.
            page.locator("a[data-view=map]").click()
            expect(page.locator("[data-testid=view-map] canvas.map-canvas")).to_have_attribute(
                "data-points", re.compile(r"[1-9]")
            )
            saved.append(screenshot(page, f"map-{lang}-{width}").name)
            page.goto(f"/#incident/{alert['incident_id']}")
            expect(page.locator("[data-testid=view-incident] figure.chart canvas")).to_have_count(2)
            saved.append(screenshot(page, f"incident-{lang}-{width}").name)
            page.locator(SIGN_OUT).click()
            expect(page.locator(TOKEN)).to_be_visible()
    print("saved " + ", ".join(saved))


MAP_VIEW = "[data-testid=view-map]"
MAP_CANVAS = f"{MAP_VIEW} canvas.map-canvas"


def map_count(page: Page, state: str) -> int:
    """How many devices the map's header counts in a state."""
    return int(page.locator(f"{MAP_VIEW} li[data-state={state}]").get_attribute("data-count") or 0)


def test_the_map_draws_every_device_and_a_new_fire_on_top(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    quiet, burning = stack.new_detector(), stack.new_detector()
    with stack.client("crew") as api:
        devices = [
            d for d in api.get("/api/v1/devices?limit=10000").json() if d["status"] != "retired"
        ]
    page = pages.open()
    sign_in(page, stack.tokens["crew"])
    page.locator("a[data-view=map]").click()
    expect(page.locator(MAP_VIEW)).to_be_visible()
    # Every registered device is drawn (the canvas says how many points its last frame had).
    expect(page.locator(MAP_CANVAS)).to_have_attribute("data-points", str(len(devices)))
    before = map_count(page, "alarming")
    published = time.monotonic()
    stack.publish_fire(burning)
    expect(page.locator(f"{MAP_VIEW} li[data-state=alarming]")).to_have_attribute(
        "data-count", str(before + 1), timeout=2_000
    )
    assert time.monotonic() - published <= 2.0
    assert quiet != burning
    # The map's own words are from the catalogue too, in both languages.
    problems = audit_languages(page, "map")
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(problems)


def test_the_incident_page_charts_its_detectors_and_links_its_cap_document(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    device = stack.new_detector()
    # A quiet reading 5 s before the fire (its own event time: two readings in one
    # millisecond would be one reading to the rules).
    stack.publish(device, temp_c=31.0, smoke_obs_pct_m=0.2, ts=time.time() * 1000 - 5000)
    stack.publish_fire(device)
    alert = stack.alert_for(device)
    assert alert["kind"] == "fire.confirmed" and alert["incident_id"] is not None
    page = pages.open()
    sign_in(page, stack.tokens["dispatcher"])
    show_dispatch(page)
    alert_article(page, alert["id"]).locator("[data-testid=incident-link]").click()
    view = page.locator("[data-testid=view-incident]")
    expect(view).to_be_visible()
    expect(view.locator(f"li[data-device-id='{device}']")).to_be_visible()
    # Both readings are on the temperature chart and the smoke chart.
    for field in ("temp_c", "smoke_obs_pct_m"):
        expect(view.locator(f"figure.chart[data-field={field}]")).to_have_attribute(
            "data-points", "2"
        )
        expect(view.locator(f"figure.chart[data-field={field}] canvas")).to_be_visible()
    cap = page.request.get(view.locator("[data-testid=cap-link]").get_attribute("href") or "")
    assert cap.status == 200 and "urn:oasis:names:tc:emergency:cap:1.2" in cap.text()
    problems = audit_languages(page, "incident")
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(problems)


def test_console_survives_a_restart_of_the_server(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    # Last in this module: it restarts the shared `sigap up`.
    stack = console_stack
    device = stack.new_detector()  # registered while the API is up
    page = pages.open()
    wait_for_stream(page, stack.tokens["dispatcher"])
    show_dispatch(page)
    banner = page.locator(BANNER)

    stack.stop()
    expect(banner).to_be_visible(timeout=10_000)
    stack.start()  # same port, data folder and InfluxDB database; sessions are in SQL
    stack.publish_fire(device)
    alert = stack.alert_for(device)
    article = alert_article(page, alert["id"])
    expect(article).to_be_visible(timeout=20_000)
    expect(banner).to_be_hidden(timeout=20_000)
    expect(page.locator(USER)).to_be_visible()  # still signed in

    # A later change, made elsewhere: once the page shows it, everything before it is drawn.
    with stack.client("dispatcher") as api:
        assert api.post(f"/api/v1/alerts/{alert['id']}/ack", json={}).status_code == 200
    expect(article).to_have_attribute("data-status", "acknowledged")
    expect(article).to_have_count(1)
    ids = alert_ids(page)
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicated, f"alert articles shown more than once: {duplicated} in {ids}"
