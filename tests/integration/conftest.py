"""Real mosquitto, influxd and `sigap up` processes on free ports in temporary folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, sync_playwright

from sigap import devstack
from tests.conftest import need_service
from tests.integration import console_page

if TYPE_CHECKING:
    from tests.integration.console_stack import ConsoleStack

pytestmark = pytest.mark.integration


def _need(binary: str) -> None:
    try:
        devstack.require(binary)
    except devstack.StackError as exc:
        if os.environ.get("SIGAP_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{exc} (SIGAP_REQUIRE_SERVICES=1: integration tests must run)")
        pytest.skip(str(exc))


# The brokers the tests start run as production does: no anonymous access, accounts in
# the dynamic security plugin. Sigap logs in as the service account; test publishers as
# the developer account, which may publish as any device (there is none in production).
BROKER = devstack.BrokerAuth(
    admin_username="sigap-admin",
    admin_password=uuid.uuid4().hex,
    service_username="sigap",
    service_password=uuid.uuid4().hex,
    developer_username="sigap-dev",
    developer_password=uuid.uuid4().hex,
)
DEVELOPER = (str(BROKER.developer_username), str(BROKER.developer_password))


def developer_client(port: int, client_id: str | None = None, **options: Any) -> mqtt.Client:
    """A paho client with the developer account's credentials (not connected yet)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or f"dev-{uuid.uuid4().hex[:8]}", **options
    )
    client.username_pw_set(*DEVELOPER)
    return client


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Service]:
    """A mosquitto broker from the repo's mosquitto.conf, on a free port."""
    _need("mosquitto")
    service = devstack.start_mosquitto(
        devstack.free_port(), tmp_path_factory.mktemp("mosquitto"), BROKER
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Service]:
    """An InfluxDB 1.x server from the repo's influxdb.conf, on a free port."""
    _need("influxd")
    service = devstack.start_influxd(devstack.free_port(), tmp_path_factory.mktemp("influxd"))
    yield service
    service.stop()


@dataclass
class SigapProcess:
    """A running `sigap up` and how to reach what it uses."""

    process: subprocess.Popen[bytes]
    api: str
    mqtt_port: int
    influx_url: str
    influx_db: str
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        """The service log so far."""
        return self.log_path.read_text(errors="replace")


# Every /api/v1 call needs a bearer token: the tests act as admin through `http`.
TEST_ADMIN_TOKEN = "integration-admin-token"
AUTH = {"Authorization": f"Bearer {TEST_ADMIN_TOKEN}"}
http = httpx.Client(headers=AUTH, timeout=10.0)


def metric(api: str, name: str) -> float:
    """A metric from /metrics, summed over its label sets; fails when it has no sample."""
    found = [
        float(line.rsplit(" ", 1)[1])
        for line in http.get(f"{api}/metrics").text.splitlines()
        if line.startswith((name + " ", name + "{"))
    ]
    if not found:
        raise AssertionError(f"{name} not in /metrics")
    return sum(found)


def count_readings(influx_url: str, db: str, where: str = "") -> int:
    """Readings InfluxDB holds in db (optionally WHERE ...); 0 before the first, -1 if down."""
    query = 'SELECT count("seq") FROM "readings"' + (f" WHERE {where}" if where else "")
    try:
        response = httpx.get(f"{influx_url}/query", params={"db": db, "q": query}, timeout=10)
    except httpx.HTTPError:
        return -1
    response.raise_for_status()
    series = response.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def start_sigap(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    data_dir: Path,
    *,
    wait_ready: bool = True,
    command: str = "up",
    influx_db: str | None = None,
    **env: str,
) -> SigapProcess:
    """Start `sigap up` (or `sigap ingest`) as its own process and wait until /readyz (or
    /healthz) answers 200; a new InfluxDB database unless `influx_db` names one, a free API
    port unless env has SIGAP_API_PORT (a restart that open browser pages must find again)."""
    api_port = int(env.get("SIGAP_API_PORT") or devstack.free_port())
    db = influx_db or "t" + uuid.uuid4().hex[:12]
    environment = (
        os.environ
        | {
            "SIGAP_MQTT_URL": f"mqtt://127.0.0.1:{mosquitto.port}",
            "SIGAP_MQTT_CLIENT_ID": f"sigap-test-{db}",
            "SIGAP_INFLUX_URL": f"http://127.0.0.1:{influxd.port}",
            "SIGAP_INFLUX_DB": db,
            "SIGAP_DATA_DIR": str(data_dir),
            "SIGAP_API_PORT": str(api_port),
            "SIGAP_INGEST_BATCH_WINDOW_MS": "50",
            "SIGAP_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
            "SIGAP_MQTT_USERNAME": BROKER.service_username,
            "SIGAP_MQTT_PASSWORD": BROKER.service_password,
            "SIGAP_MQTT_ADMIN_USERNAME": BROKER.admin_username,
            "SIGAP_MQTT_ADMIN_PASSWORD": BROKER.admin_password,
        }
        | env
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"sigap-{command}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "sigap", command],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    proc = SigapProcess(
        process,
        f"http://127.0.0.1:{api_port}",
        mosquitto.port,
        f"http://127.0.0.1:{influxd.port}",
        db,
        data_dir,
        log_path,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"sigap {command} exited {process.returncode}:\n{proc.log()[-3000:]}")
        try:
            probe = "/readyz" if wait_ready else "/healthz"
            if httpx.get(f"{proc.api}{probe}", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sigap {command} not ready in 60 s:\n{proc.log()[-3000:]}")
        time.sleep(0.1)  # polling a starting process; not standing in for synchronisation


def stop_sigap(proc: SigapProcess) -> None:
    """SIGTERM and wait for a clean exit."""
    if proc.process.poll() is None:
        proc.process.terminate()
        try:
            proc.process.wait(30)
        except subprocess.TimeoutExpired:
            proc.process.kill()
            proc.process.wait()


@pytest.fixture(scope="module")
def sigap(
    mosquitto: devstack.Service, influxd: devstack.Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SigapProcess]:
    """`sigap up` against the test broker and InfluxDB, with its own SQLite and database."""
    proc = start_sigap(mosquitto, influxd, tmp_path_factory.mktemp("sigap"))
    yield proc
    stop_sigap(proc)


@pytest.fixture
def publisher(mosquitto: devstack.Service) -> Iterator[mqtt.Client]:
    """A connected paho client; publish with .publish(...).wait_for_publish()."""
    client = developer_client(mosquitto.port, f"pub-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def mosquitto_pub() -> str | None:
    """Path of the mosquitto_pub client, if installed."""
    return shutil.which("mosquitto_pub")


@dataclass
class AuthBroker:
    """A mosquitto with anonymous access off and the dynamic security plugin."""

    service: devstack.Service
    auth: devstack.BrokerAuth
    dynsec_file: Path
    pid: int  # at start: the tests assert that nothing restarted it


@pytest.fixture(scope="session")
def mosquitto_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthBroker]:
    """A broker as production runs it (devices/provisioning/README.md), on a free port."""
    _need("mosquitto")
    workdir = tmp_path_factory.mktemp("mosquitto-auth")
    auth = devstack.BrokerAuth(
        admin_username="sigap-admin",
        admin_password=uuid.uuid4().hex,
        service_username="sigap",
        service_password=uuid.uuid4().hex,
    )
    service = devstack.start_mosquitto(devstack.free_port(), workdir, auth=auth)
    yield AuthBroker(
        service, auth, workdir / "mosquitto" / "dynamic-security.json", service.process.pid
    )
    service.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options with Debian's chromium: Playwright's own browser
    download (`playwright install`) is not used, so the browser tests need the package."""
    chromium = shutil.which("chromium") or shutil.which("/usr/bin/chromium")
    if chromium is None:
        need_service("chromium is not installed (Debian package `chromium`: `make system-deps`)")
    return {**browser_type_launch_args, "executable_path": chromium}


# --- The browser console's tests (test_console*.py) -------------------------------------


@pytest.fixture(scope="session")
def console_artifacts() -> Path:
    """artifacts/console/, emptied once per session: screenshots for people to look at."""
    shutil.rmtree(console_page.ARTIFACTS, ignore_errors=True)
    console_page.ARTIFACTS.mkdir(parents=True)
    return console_page.ARTIFACTS


@pytest.fixture(scope="module")
def console_stack(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[ConsoleStack]:
    """One `sigap up` per test module, with stations and a token per role (console_stack)."""
    # Imported here: console_stack builds on this conftest's helpers.
    from tests.integration.console_stack import close_console_stack, start_console_stack

    name = request.module.__name__.rsplit(".", 1)[-1]
    stack = start_console_stack(mosquitto, influxd, tmp_path_factory.mktemp(name))
    yield stack
    close_console_stack(stack)


@pytest.fixture(scope="module")
def console_browser(
    browser_type_launch_args: dict[str, Any], console_artifacts: Path
) -> Iterator[Browser]:
    """Chromium for one module, not pytest-playwright's session-wide `browser`: while
    Playwright's sync driver lives it marks the thread's event loop as running, which would
    break every asyncio test that runs after it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**browser_type_launch_args)
        yield browser
        browser.close()


@pytest.fixture
def pages(
    console_browser: Browser,
    console_stack: ConsoleStack,
    request: pytest.FixtureRequest,
) -> Iterator[console_page.Pages]:
    """Pages to open on the module's console; saved as screenshots when the test fails, and
    a passing test fails on any error in the browser."""
    opened = console_page.Pages(console_browser, console_stack.base_url)
    yield opened
    # pytest-playwright's report hook records the call phase's report on the item.
    report = getattr(request.node, "rep_call", None)
    failed = report is None or report.failed
    opened.close(request.node.name, failed)
    if opened.errors and not failed:
        pytest.fail("errors in the browser:\n" + "\n".join(opened.errors))
