"""The technician's view of the console (js/technician.js) in a real browser against the real
stack: registration with the API's own messages beside their fields, the CSV import's per-row
report, MQTT credentials shown once, and a device's first reading arriving live on its page
after the device published it over MQTT with those credentials."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Locator, Page, expect

from tests.integration.console_page import (
    ARTIFACTS,
    LANG,
    PHONE,
    SIGN_OUT,
    TOKEN,
    WALL,
    Pages,
    audit_languages,
    catalogue,
    screenshot,
    set_language,
    sign_in,
)
from tests.integration.console_stack import (
    ConsoleStack,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# The view's DOM contract (tests here and the lead's wiring rely on these).
VIEW = "[data-testid=view-devices]"
TAB = "a[data-view=devices]"
REGISTER_FORM = "form[data-testid=register-form]"
SUMMARY = "[data-testid=register-summary]"
DEVICE_LIST = "[data-testid=device-list]"
DEVICE_PAGE = "article[data-testid=device-page]"
IMPORT_REPORT = "[data-testid=import-report]"
TECH_BUTTONS = (
    "button[data-action=register]",
    "button[data-action=import]",
    "button[data-action=issue-credentials]",
    "button[data-action=confirm-credentials]",
)
# What a detector sends on its first contact: values, battery and signal.
FIRST_READING = {
    "temp_c": 29.5,
    "smoke_obs_pct_m": 0.25,
    "humidity_pct": 71.0,
    "battery_pct": 87.0,
    "battery_v": 3.6,
    "rssi_dbm": -71.0,
}


def show_devices(page: Page) -> Locator:
    """The technician's view, through its tab."""
    page.locator(TAB).click()
    view = page.locator(VIEW)
    expect(view).to_be_visible()
    return view


def fill_form(form: Locator, values: dict[str, str], kind: str = "fire") -> None:
    """Type a registration into the form (kind by its radio button)."""
    form.locator(f"input[name=kind][value={kind}]").check()
    for name, value in values.items():
        form.locator(f"[name={name}]").fill(value)


def device_page(page: Page, device_id: str) -> Locator:
    """The page of one device."""
    return page.locator(f'{DEVICE_PAGE}[data-device-id="{device_id}"]')


def new_id(prefix: str) -> str:
    """A device id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def publish_as_device(port: int, username: str, password: str, payload: dict[str, Any]) -> None:
    """Connect with the device's own MQTT login and publish one reading (QoS 1, acknowledged)."""
    connected = threading.Event()
    refused: list[str] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{username}-{uuid.uuid4().hex[:4]}"
    )
    client.username_pw_set(username, password)

    def on_connect(_c: object, _u: object, _f: object, code: Any, _p: object) -> None:
        if code.is_failure:
            refused.append(str(code))
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert connected.wait(10), "no CONNACK"
        assert not refused, f"the broker refused the issued login: {refused}"
        topic = f"sigap/devices/{username}/up"
        client.publish(topic, orjson.dumps(payload), qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def register_through_form(page: Page, device_id: str) -> Locator:
    """Register a fire detector with the form; the device's page opens."""
    form = page.locator(REGISTER_FORM)
    fill_form(
        form,
        {"id": device_id, "name": "Ruko Jl. Tjilik Riwut", "lat": "-2.5401", "lon": "112.9503"},
    )
    form.locator("button[data-action=register]").click()
    opened = device_page(page, device_id)
    expect(opened).to_be_visible()
    return opened


def test_technician_registers_a_device_and_sees_its_first_reading_arrive(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    device_id = new_id("fire-roof")
    page = pages.open()
    sign_in(page, stack.tokens["technician"])
    view = show_devices(page)
    form = view.locator(REGISTER_FORM)

    # lat 95: the API's own message, beside the lat field, introduced by the catalogue.
    fill_form(
        form,
        {
            "id": device_id,
            "name": "Ruko Jl. Tjilik Riwut",
            "lat": "95",
            "lon": "112.9503",
            "district": "Baamang",
            "zone": "ruko-tjilik",
        },
    )
    form.locator("button[data-action=register]").click()
    lat_error = form.locator("[data-error-for=lat]")
    expect(lat_error).to_contain_text("less than or equal to 90")
    expect(lat_error.locator("[data-i18n='tech.form.check']")).to_be_visible()
    expect(lat_error.locator("[data-value]")).to_have_text(re.compile("less than or equal to 90"))
    expect(form.locator("[name=lat]")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("[data-error-for=lon]")).to_be_empty()
    summary = form.locator(SUMMARY)
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("less than or equal to 90")
    expect(summary).to_be_focused()
    with stack.client("technician") as api:
        assert api.get(f"/api/v1/devices/{device_id}").status_code == 404

    # Corrected, it registers and the device's page opens, waiting for the first reading.
    form.locator("[name=lat]").fill("-2,5401")  # a decimal comma, as an Indonesian keyboard types
    form.locator("button[data-action=register]").click()
    opened = device_page(page, device_id)
    expect(opened).to_be_visible()
    expect(page).to_have_url(re.compile(f"#devices/{device_id}$"))
    expect(opened.locator("[data-testid=no-reading]")).to_be_visible()
    with stack.client("technician") as api:
        registered = api.get(f"/api/v1/devices/{device_id}").json()
    assert registered["lat"] == -2.5401 and registered["zone"] == "ruko-tjilik", registered

    # MQTT credentials: shown once, with the warning and a copy button.
    opened.locator("button[data-action=issue-credentials]").click()
    opened.locator("button[data-action=confirm-credentials]").click()
    shown = opened.locator("[data-testid=credentials]")
    expect(shown).to_be_visible()
    expect(shown.locator("[data-testid=credentials-warning]")).to_be_visible()
    expect(shown.locator("[data-testid=credentials-warning]")).to_have_attribute(
        "data-i18n", "tech.creds.warning"
    )
    username = shown.locator("[data-testid=credential-username]").inner_text()
    password = shown.locator("[data-testid=credential-password]").inner_text()
    assert username == device_id and len(password) >= 16, (username, password)
    expect(shown).to_contain_text(f"sigap/devices/{device_id}/up")
    shown.locator("button[data-copy=password]").click()
    expect(shown.locator("button[data-copy=password]")).to_have_attribute(
        "data-i18n", re.compile(r"tech\.creds\.(copied|selected)")
    )
    if shown.locator("button[data-copy=password]").get_attribute("data-i18n") == (
        "tech.creds.copied"
    ):
        assert page.evaluate("navigator.clipboard.readText()") == password

    # The device publishes with that login; the reading arrives on its page by itself.
    publish_as_device(stack.mosquitto.port, username, password, {"seq": 1, **FIRST_READING})
    news = opened.locator("[data-testid=reading-news]")
    expect(news).to_be_visible(timeout=15_000)
    expect(news).to_have_attribute("data-news", "first")
    expect(news.locator("[data-i18n='tech.live.first']")).to_be_visible()
    values = opened.locator("[data-testid=reading-values]")
    expect(values.locator("[data-quantity=temp_c]")).to_have_text(re.compile(r"29,5\s*°C"))
    expect(values.locator("[data-quantity=smoke_obs_pct_m]")).to_contain_text("0,25")
    expect(opened.locator("[data-testid=battery]")).to_contain_text("87")
    expect(opened.locator("[data-testid=battery]")).to_contain_text("3,60")
    expect(opened.locator("[data-testid=signal]")).to_have_text(re.compile(r"-71\s*dBm"))
    expect(opened.locator("[data-testid=no-reading]")).to_have_count(0)

    # The password was shown once: gone when the technician leaves, and kept nowhere.
    opened.locator("button[data-action=back]").click()
    expect(page.locator(DEVICE_PAGE)).to_have_count(0)
    expect(page.locator(DEVICE_LIST)).to_be_visible()
    page.locator(f'{DEVICE_LIST} button[data-device-id="{device_id}"]').click()
    again = device_page(page, device_id)
    expect(again.locator("[data-testid=reading-values]")).to_be_visible()
    expect(again.locator("[data-testid=credentials]")).to_have_count(0)
    kept = page.evaluate(
        "() => [document.body.innerText, location.href, document.cookie,"
        " JSON.stringify({...localStorage}), JSON.stringify({...sessionStorage})].join(' ')"
    )
    assert password not in kept, "the MQTT password is still in the page or its storage"
    # A second reading is news again, but not the first.
    publish_as_device(stack.mosquitto.port, username, password, {"seq": 2, "temp_c": 30.5})
    expect(again.locator("[data-testid=reading-news]")).to_have_attribute("data-news", "new")
    expect(again.locator("[data-quantity=temp_c]")).to_have_text(re.compile(r"30,5\s*°C"))


CSV_WITH_A_BAD_ROW = (
    "id,kind,name,lat,lon,district,zone,depth_mm\n"
    "{ok},fire,Ruko A,-2.5401,112.9503,Baamang,ruko-a,\n"
    "{bad},fire,Ruko B,95,112.9503,Baamang,ruko-b,\n"
    "{bin},bin,,-2.5302,112.9411,Baamang,,\n"
)


def test_csv_import_shows_the_per_row_report_then_registers_a_good_file(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    ids = {"ok": new_id("fire-csv"), "bad": new_id("fire-csv"), "bin": new_id("bin-csv")}
    page = pages.open()
    sign_in(page, stack.tokens["technician"])
    view = show_devices(page)
    chooser = view.locator("input[type=file][name=file]")
    chooser.set_input_files(
        {
            "name": "perangkat.csv",
            "mimeType": "text/csv",
            "buffer": CSV_WITH_A_BAD_ROW.format(**ids).encode(),
        }
    )
    expect(view.locator(".tech-file-name")).to_have_text("perangkat.csv")
    view.locator("button[data-action=import]").click()
    report = view.locator(IMPORT_REPORT)
    table = report.locator("[data-testid=import-errors]")
    expect(table).to_be_visible()
    expect(table.locator('tr[data-row="3"][data-field="lat"]')).to_contain_text("90")
    expect(table.locator('tr[data-row="4"][data-field="depth_mm"]')).to_contain_text("required")
    expect(table.locator("tbody tr")).to_have_count(2)
    with stack.client("technician") as api:  # all rows or none
        for device_id in ids.values():
            assert api.get(f"/api/v1/devices/{device_id}").status_code == 404

    fixed = (
        CSV_WITH_A_BAD_ROW.replace(",95,", ",-2.5402,")
        .replace(",Baamang,,\n", ",Baamang,,1100\n")
        .format(**ids)
    )
    chooser.set_input_files(
        {"name": "perangkat.csv", "mimeType": "text/csv", "buffer": fixed.encode()}
    )
    view.locator("button[data-action=import]").click()
    done = report.locator("[data-testid=import-done]")
    expect(done).to_be_visible()
    expect(done).to_have_attribute("data-i18n", "tech.import.done")
    expect(done).to_contain_text("3")
    with stack.client("technician") as api:
        for device_id in ids.values():
            assert api.get(f"/api/v1/devices/{device_id}").status_code == 200
    # The new devices are in the list at once.
    view.locator("input[name=q]").fill(ids["bin"])
    expect(view.locator(f'{DEVICE_LIST} button[data-device-id="{ids["bin"]}"]')).to_be_visible()


@pytest.mark.parametrize("role", ["crew", "dispatcher"])
def test_other_roles_see_devices_without_technician_buttons(
    console_stack: ConsoleStack, pages: Pages, role: str
) -> None:
    stack = console_stack
    device_id = stack.new_detector()
    page = pages.open(PHONE)
    sign_in(page, stack.tokens[role])
    view = show_devices(page)
    expect(view.locator(f'{DEVICE_LIST} button[data-device-id="{device_id}"]')).to_be_visible()
    expect(view.locator(REGISTER_FORM)).to_have_count(0)
    expect(view.locator("input[type=file]")).to_have_count(0)
    view.locator(f'{DEVICE_LIST} button[data-device-id="{device_id}"]').click()
    opened = device_page(page, device_id)
    expect(opened).to_be_visible()
    expect(opened.locator("[data-testid=live-status]")).to_contain_text(re.compile(r"\d"))
    expect(opened.locator("[data-testid=credentials-panel]")).to_have_count(0)
    for button in TECH_BUTTONS:
        expect(page.locator(button)).to_have_count(0)


def test_a_click_on_the_location_map_fills_the_coordinates(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    page = pages.open()
    sign_in(page, console_stack.tokens["technician"])
    view = show_devices(page)
    form = view.locator(REGISTER_FORM)
    canvas = form.locator("[data-testid=location-map] canvas.map-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    # The map opens on Sampit; a click at its middle is Sampit's centre.
    canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    lat = float(form.locator("[name=lat]").input_value())
    lon = float(form.locator("[name=lon]").input_value())
    assert abs(lat - -2.5363) < 0.001 and abs(lon - 112.9511) < 0.001
    # The chosen spot is drawn as the device-to-be.
    expect(canvas).to_have_attribute("data-points", "1")
    # Typed coordinates move the marker too.
    form.locator("[name=lat]").fill("-2.5401")
    form.locator("[name=lon]").fill("112.9503")
    form.locator("[name=lon]").blur()
    expect(canvas).to_have_attribute("data-points", "1")


def test_every_visible_text_of_the_view_comes_from_the_catalogue(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    ident, en = catalogue("id"), catalogue("en")
    mine = sorted(k for k in ident if k.startswith("tech."))
    assert mine == sorted(k for k in en if k.startswith("tech.")), "tech.* keys differ"

    page = pages.open()
    sign_in(page, stack.tokens["technician"])
    view = show_devices(page)
    form = view.locator(REGISTER_FORM)
    # The home with a refused import and a registration refused for a field, the "more"
    # fields open; then refused with a message that names no field (summary only).
    view.locator("input[type=file][name=file]").set_input_files(
        {
            "name": "x.csv",
            "mimeType": "text/csv",
            "buffer": b"id,kind,lat,lon,colour\nx,fire,1,2,red\n",
        }
    )
    view.locator("button[data-action=import]").click()
    expect(view.locator("[data-testid=import-errors]")).to_be_visible()
    form.locator("details.tech-more summary").click()
    fill_form(form, {"id": new_id("fire-audit"), "lat": "95", "lon": "112.95"})
    form.locator("button[data-action=register]").click()
    expect(form.locator("[data-error-for=lat]")).not_to_be_empty()
    problems = audit_languages(page, "home, field message")
    fill_form(form, {"lat": "-2.54", "rule_class": "no-such-class"})
    form.locator("button[data-action=register]").click()
    expect(form.locator(SUMMARY)).to_contain_text("unknown rule class")
    expect(form.locator("[data-error-for=lat]")).to_be_empty()
    problems += audit_languages(page, "home, summary message")

    # A device page with a reading, battery, signal and freshly issued credentials.
    form.locator("[name=rule_class]").fill("")
    device_id = new_id("fire-audit")
    opened = register_through_form(page, device_id)
    stack.publish(device_id, **FIRST_READING)
    expect(opened.locator("[data-testid=reading-values]")).to_be_visible(timeout=15_000)
    opened.locator("button[data-action=issue-credentials]").click()
    expect(opened.locator("button[data-action=confirm-credentials]")).to_be_visible()
    problems += audit_languages(page, "credentials confirm")
    opened.locator("button[data-action=confirm-credentials]").click()
    expect(opened.locator("[data-testid=credentials]")).to_be_visible()
    problems += audit_languages(page, "device page")
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(dict.fromkeys(problems))


def test_screenshots_of_the_view_in_both_languages(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    device_id = new_id("fire-foto")
    with stack.client("technician") as api:
        created = api.post(
            "/api/v1/devices",
            json={
                "id": device_id,
                "kind": "fire",
                "name": "Gudang Pasar Keramat",
                "lat": -2.5382,
                "lon": 112.9467,
                "district": "Mentawa Baru Ketapang",
                "zone": "pasar-keramat",
                "reporting_interval_s": 60,
            },
        )
        assert created.status_code == 201, created.text
    stack.publish(device_id, **FIRST_READING)
    saved: list[str] = []
    for viewport in (PHONE, WALL):
        width = viewport["width"]
        page = pages.open(viewport)  # saved as failed-*.png if the test fails
        for lang in ("id", "en"):
            page.goto("/")
            expect(page.locator(TOKEN)).to_be_visible()
            sign_in(page, stack.tokens["technician"])
            if page.locator(LANG).input_value() != lang:
                set_language(page, lang)
            view = show_devices(page)
            form = view.locator(REGISTER_FORM)
            fill_form(form, {"id": new_id("fire-x"), "lat": "95", "lon": "112.95"})
            form.locator("button[data-action=register]").click()
            expect(form.locator("[data-error-for=lat]")).not_to_be_empty()
            page.evaluate("window.scrollTo(0, 0)")
            saved.append(screenshot(page, f"devices-{lang}-{width}").name)

            page.goto(f"/#devices/{device_id}")
            opened = device_page(page, device_id)
            expect(opened.locator("[data-testid=reading-values]")).to_be_visible()
            opened.locator("button[data-action=issue-credentials]").click()
            opened.locator("button[data-action=confirm-credentials]").click()
            expect(opened.locator("[data-testid=credentials]")).to_be_visible()
            page.evaluate("window.scrollTo(0, 0)")
            saved.append(screenshot(page, f"devices-page-{lang}-{width}").name)
            page.locator(SIGN_OUT).click()
            expect(page.locator(TOKEN)).to_be_visible()
    print("saved " + ", ".join(saved))


# What an air-quality station sends (issue #19): haze-season PM2.5, PM10 and CO.
AIR_READING = {"pm25_ugm3": 182.5, "pm10_ugm3": 240.0, "co_ppm": 4.2, "battery_v": 12.6}


def test_an_air_quality_station_from_the_form_to_its_readings_and_the_map(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    page = pages.open(WALL)
    sign_in(page, stack.tokens["technician"])
    view = show_devices(page)
    form = view.locator(REGISTER_FORM)
    help_line = form.locator("[data-testid=kind-help]")
    expect(help_line).to_be_hidden()
    form.locator("input[name=kind][value=air]").check()
    # What the station must send, and no bin depth to fill in.
    expect(help_line).to_be_visible()
    expect(help_line).to_have_text(catalogue("id")["tech.kind.air_help"])
    expect(form.locator(".tech-field-depth_mm")).to_be_hidden()
    expect(view.locator("#tech-find-kind option[value=air]")).to_have_count(1)
    problems = audit_languages(page, "form, air station chosen")
    saved: list[str] = []
    for lang in ("id", "en"):
        set_language(page, lang)
        expect(help_line).to_have_text(catalogue(lang)["tech.kind.air_help"])
        form.locator("input[name=kind][value=air]").scroll_into_view_if_needed()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        card = view.locator(".tech-register-card")
        card.screenshot(path=str(ARTIFACTS / f"devices-air-form-{lang}.png"))
        saved.append(f"devices-air-form-{lang}.png")
    set_language(page, "id")
    page.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})  # a phone
    card.screenshot(path=str(ARTIFACTS / "devices-air-form-id-360.png"))
    saved.append("devices-air-form-id-360.png")
    page.set_viewport_size({"width": WALL["width"], "height": WALL["height"]})

    # Registered through the form, the station reports and its page shows what it sent.
    device_id = new_id("air")
    fill_form(
        form,
        {"id": device_id, "name": "DLH Kotim", "lat": "-2.5449", "lon": "112.9443"},
        kind="air",
    )
    form.locator("[name=district]").fill("Mentawa Baru Ketapang")
    form.locator("button[data-action=register]").click()
    opened = device_page(page, device_id)
    expect(opened).to_be_visible()
    expect(opened.locator("[data-i18n='tech.kind.air']")).to_have_text("Stasiun kualitas udara")
    stack.publish(device_id, **AIR_READING)
    values = opened.locator("[data-testid=reading-values]")
    expect(values).to_be_visible(timeout=15_000)
    for name in ("pm25_ugm3", "pm10_ugm3", "co_ppm"):
        expect(values.locator(f"dd[data-quantity={name}]")).to_be_visible()
    expect(values.locator("dt[data-i18n='tech.q.pm10_ugm3']")).to_have_text("Partikel PM10")
    expect(values.locator("dd[data-quantity=pm25_ugm3]")).to_contain_text("183")  # 0 decimals
    expect(values.locator("dd[data-quantity=co_ppm]")).to_contain_text("4,2")  # 0.1 ppm
    listed = values.locator("dd[data-quantity]")
    assert listed.evaluate_all("(dds) => dds.map((dd) => dd.dataset.quantity)") == [
        "pm25_ugm3",
        "pm10_ugm3",
        "co_ppm",
    ]
    problems += audit_languages(page, "air station's page")
    page.evaluate("window.scrollTo(0, 0)")
    saved.append(screenshot(page, "devices-air-page-id").name)

    # On the map: drawn with the others, and the legend names its symbol.
    page.locator("a[data-view=map]").click()
    legend = page.locator("[data-testid=view-map] .map-legend")
    expect(legend.locator("[data-i18n='map.kind.air']")).to_have_text("Stasiun kualitas udara")
    with stack.client("technician") as api:
        devices = api.get("/api/v1/devices?limit=10000").json()
    shown = [d for d in devices if d["status"] != "retired"]
    canvas = page.locator("[data-testid=view-map] canvas.map-canvas")
    expect(canvas).to_have_attribute("data-points", str(len(shown)))
    problems += audit_languages(page, "map with an air station")
    for lang in ("id", "en"):
        set_language(page, lang)
        legend.screenshot(path=str(ARTIFACTS / f"map-legend-{lang}.png"))
        saved.append(f"map-legend-{lang}.png")
    saved.append(screenshot(page, "map-air-en").name)
    print("saved " + ", ".join(saved))
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(dict.fromkeys(problems))


# Device profiles (issue #20): the register form's select, fed by GET /api/v1/profiles and
# filtered by the kind chosen, and the device page's profile row.
PROFILE = "select[name=profile]"
LDDS75 = f"{PROFILE} option[value=dragino-ldds75]"
PHONE_390 = {"width": 390, "height": 844}


def lorawan_bin(device_id: str) -> dict[str, str]:
    """A LoRaWAN bin's text fields for the form (its own DevEUI)."""
    return {
        "id": device_id,
        "name": "TPS Jl. Jend. Sudirman",
        "lat": "-2.5302",
        "lon": "112.9411",
        "depth_mm": "1100",
        "ns_device_id": uuid.uuid4().hex[:16].upper(),
    }


def test_a_lorawan_bin_registers_with_its_profile_and_its_page_names_it(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    device_id = new_id("bin-lora")
    page = pages.open()
    sign_in(page, stack.tokens["technician"])
    view = show_devices(page)
    form = view.locator(REGISTER_FORM)
    form.locator("details.tech-more summary").click()
    select = form.locator(PROFILE)
    interval = form.locator("[name=reporting_interval_s]")
    expect(select.locator("option").first).to_have_attribute("data-i18n", "tech.profile.none")
    expect(form.locator("#tech-reg-profile-help")).to_have_text(
        catalogue("id")["tech.help.profile"]
    )

    # A detector (the first kind): the fire sensors and Sigap's own, no bin sensor.
    expect(select.locator("option[value=sigap]")).to_have_text(re.compile(r"^Sigap "))
    expect(select.locator("option[value=netvox-ra02a]")).to_have_text("Netvox RA02A")
    expect(form.locator(LDDS75)).to_have_count(0)
    # A bin: the bin sensors, "Vendor Model", and Sigap's own still.
    form.locator("input[name=kind][value=bin]").check()
    expect(form.locator(LDDS75)).to_have_text("Dragino LDDS75")
    expect(select.locator("option[value=milesight-em310-udl]")).to_have_count(1)
    expect(select.locator("option[value=netvox-ra02a]")).to_have_count(0)
    expect(select.locator("option[value=sigap]")).to_have_count(1)
    # Its reporting interval is the empty field's placeholder, not its value.
    select.select_option("dragino-ldds75")
    expect(interval).to_have_attribute("placeholder", "1200 (dari profil)")
    expect(interval).to_have_value("")
    # Back to a detector: the bin sensor goes, and with it the choice and the placeholder.
    form.locator("input[name=kind][value=fire]").check()
    expect(form.locator(LDDS75)).to_have_count(0)
    expect(select.locator("option[value=sigap]")).to_have_count(1)
    expect(select).to_have_value("")
    expect(interval).not_to_have_attribute("placeholder", re.compile("."))

    fill_form(form, lorawan_bin(device_id), kind="bin")
    form.locator("[name=network_server]").select_option("chirpstack")
    select.select_option("dragino-ldds75")
    problems = audit_languages(page, "form, a profile chosen")
    set_language(page, "en")
    expect(interval).to_have_attribute("placeholder", "1200 (from the profile)")
    set_language(page, "id")
    expect(interval).to_have_attribute("placeholder", "1200 (dari profil)")

    form.locator("button[data-action=register]").click()
    opened = device_page(page, device_id)
    expect(opened).to_be_visible()
    with stack.client("technician") as api:
        registered = api.get(f"/api/v1/devices/{device_id}").json()
    assert registered["profile"] == "dragino-ldds75", registered
    assert registered["network_server"] == "chirpstack", registered
    row = opened.locator("dd [data-profile=dragino-ldds75]")
    expect(row).to_have_text("Dragino LDDS75 (dragino-ldds75)")
    expect(opened.locator("dt[data-i18n='tech.field.profile']")).to_have_text("Profil perangkat")
    problems += audit_languages(page, "device page with a profile")
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(dict.fromkeys(problems))


def test_a_profile_the_api_refuses_is_explained_beside_the_profile_field(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    device_id = new_id("bin-prof")
    page = pages.open(PHONE)
    sign_in(page, stack.tokens["technician"])
    view = show_devices(page)
    form = view.locator(REGISTER_FORM)
    form.locator("details.tech-more summary").click()
    # A codec's profile on a bin that is not LoRaWAN (no network server): the API says no.
    fill_form(
        form, {"id": device_id, "lat": "-2.5302", "lon": "112.9411", "depth_mm": "1100"}, "bin"
    )
    form.locator(PROFILE).select_option("dragino-ldds75")
    form.locator("button[data-action=register]").click()
    error = form.locator("[data-error-for=profile]")
    expect(error).to_contain_text("set network_server")
    expect(error.locator("[data-i18n='tech.form.check']")).to_be_visible()
    expect(error.locator("[data-value]")).to_have_text(re.compile(r"^profile: 'dragino-ldds75'"))
    expect(form.locator(PROFILE)).to_have_attribute("aria-invalid", "true")
    summary = form.locator(SUMMARY)
    expect(summary).to_be_focused()
    expect(summary.locator("button.tech-jump")).to_have_text("Profil perangkat")
    with stack.client("technician") as api:
        assert api.get(f"/api/v1/devices/{device_id}").status_code == 404

    # Sigap's own profile fits any device: it registers.
    form.locator(PROFILE).select_option("sigap")
    form.locator("button[data-action=register]").click()
    opened = device_page(page, device_id)
    expect(opened.locator("dd [data-profile=sigap]")).to_have_text(
        re.compile(r"^Sigap .*\(sigap\)$")
    )
    with stack.client("technician") as api:
        assert api.get(f"/api/v1/devices/{device_id}").json()["profile"] == "sigap"


def test_without_the_profiles_the_form_still_registers(
    console_stack: ConsoleStack, pages: Pages
) -> None:
    stack = console_stack
    with_profile = new_id("bin-lora")
    with stack.client("technician") as api:
        created = api.post(
            "/api/v1/devices",
            json={
                "id": with_profile,
                "kind": "bin",
                "lat": -2.5302,
                "lon": 112.9411,
                "depth_mm": 1100,
                "network_server": "chirpstack",
                "ns_device_id": uuid.uuid4().hex[:16],
                "profile": "dragino-ldds75",
            },
        )
        assert created.status_code == 201, created.text
    page = pages.open(PHONE)
    page.route(
        "**/api/v1/profiles",
        lambda route: route.fulfill(
            status=503, content_type="application/json", body='{"detail": "unavailable"}'
        ),
    )
    sign_in(page, stack.tokens["technician"])
    view = show_devices(page)
    form = view.locator(REGISTER_FORM)
    form.locator("details.tech-more summary").click()
    note = form.locator("[data-testid=profile-note]")
    expect(note).to_be_visible()
    expect(note).to_have_text(catalogue("id")["tech.profile.failed"])
    expect(form.locator(f"{PROFILE} option")).to_have_count(1)
    expect(form.locator(PROFILE)).to_have_value("")
    problems = audit_languages(page, "form, no profiles")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    form.locator(".tech-field-profile").screenshot(
        path=str(ARTIFACTS / "devices-profile-failed-id.png")
    )

    register_through_form(page, new_id("fire-noprof"))
    # A device's page names its profile by id when the list is not there.
    page.goto(f"/#devices/{with_profile}")
    expect(device_page(page, with_profile).locator("dd [data-profile]")).to_have_text(
        "dragino-ldds75"
    )
    assert not problems, "text outside the catalogue rule:\n" + "\n".join(dict.fromkeys(problems))


def test_screenshots_of_the_profile_select(console_stack: ConsoleStack, pages: Pages) -> None:
    stack = console_stack
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []
    for viewport in (PHONE_390, WALL):
        width = viewport["width"]
        page = pages.open(viewport)
        sign_in(page, stack.tokens["technician"])
        view = show_devices(page)
        form = view.locator(REGISTER_FORM)
        form.locator("details.tech-more summary").click()
        fill_form(form, lorawan_bin(new_id("bin-foto")), kind="bin")
        form.locator("[name=network_server]").select_option("chirpstack")
        form.locator(PROFILE).select_option("dragino-ldds75")
        for lang in ("id", "en"):
            set_language(page, lang)
            more = form.locator("details.tech-more")
            more.screenshot(path=str(ARTIFACTS / f"devices-profile-{lang}-{width}.png"))
            saved.append(f"devices-profile-{lang}-{width}.png")
            form.locator("[name=reporting_interval_s]").scroll_into_view_if_needed()
            card = view.locator(".tech-register-card")
            card.screenshot(path=str(ARTIFACTS / f"devices-profile-form-{lang}-{width}.png"))
            saved.append(f"devices-profile-form-{lang}-{width}.png")
        # Its choices for a bin as a list (a native drop-down is drawn outside the page).
        select = form.locator(PROFILE)
        select.evaluate("(s) => { s.size = s.options.length; }")
        field = form.locator(".tech-field-profile")
        for lang in ("id", "en"):
            set_language(page, lang)
            field.screenshot(path=str(ARTIFACTS / f"devices-profile-open-{lang}-{width}.png"))
            saved.append(f"devices-profile-open-{lang}-{width}.png")
        select.evaluate("(s) => s.removeAttribute('size')")
    print("saved " + ", ".join(saved))
