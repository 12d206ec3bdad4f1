"""`sigap demo`: the whole system on this machine, with a simulated fleet."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
from rich.console import Console

from sigap import devstack
from sigap.settings import Settings


def _wait_ready(
    base: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise devstack.StackError(f"sigap up exited with {process.returncode}; see {log_path}")
        try:
            response = httpx.get(f"{base}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)  # polling the service while it starts
    raise devstack.StackError(f"sigap up not ready after {timeout:.0f} s: {last}")


def _print_alerts(base: str, token: str, console: Console, stop: threading.Event) -> None:
    """Follow the SSE stream and print each alert change (what a console would see)."""
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        try:
            with httpx.stream(
                "GET", f"{base}/api/v1/alerts/stream", headers=headers, timeout=None
            ) as response:
                event = ""
                for line in response.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event:"):
                        event = line.partition(":")[2].strip()
                    elif line.startswith("data:"):
                        alert = orjson.loads(line.partition(":")[2])
                        style = "bold red" if alert["category"] == "fire" else "yellow"
                        console.print(
                            f"[{style}]{event:<14}[/] #{alert['id']} {alert['kind']:<11} "
                            f"{alert['device_id']:<16} {alert['reason']}"
                        )
        except httpx.HTTPError:
            if stop.wait(1.0):
                return


# Fire stations (pos pemadam kebakaran) and a waste depot around Sampit, so that fire
# alerts get a proposed station and the depot's crews get routes. Approximate places.
DEMO_STATIONS = (
    {
        "id": "damkar-sampit",
        "kind": "fire_station",
        "name": "Damkar Kotim (Sampit)",
        "lat": -2.5370,
        "lon": 112.9480,
        "district": "Mentawa Baru Ketapang",
    },
    {
        "id": "damkar-baamang",
        "kind": "fire_station",
        "name": "Pos Damkar Baamang",
        "lat": -2.5060,
        "lon": 112.9560,
        "district": "Baamang",
    },
    {
        "id": "damkar-seranau",
        "kind": "fire_station",
        "name": "Pos Damkar Seranau",
        "lat": -2.5350,
        "lon": 112.9860,
        "district": "Seranau",
    },
    {
        "id": "depot-dlh-sampit",
        "kind": "waste_depot",
        "name": "DLH Kotim depot",
        "lat": -2.5300,
        "lon": 112.9420,
        "district": "Mentawa Baru Ketapang",
        "trucks": 3,
        "truck_capacity_l": 8000,
        "shift_start": "06:00",
        "shift_end": "14:00",
    },
)


def _register_stations(api: str, token: str, console: Console) -> None:
    """Register the demo's stations (already there after a restart: fine)."""
    headers = {"Authorization": f"Bearer {token}"}
    for station in DEMO_STATIONS:
        response = httpx.post(f"{api}/api/v1/stations", json=station, headers=headers, timeout=10)
        if response.status_code not in (201, 409):
            console.print(f"[yellow]station {station['id']}: {response.text}[/]")


CONSOLE_ROLES = ("dispatcher", "crew", "technician")


def _console_tokens(api: str, token: str, credentials: Path) -> dict[str, str]:
    """A sign-in token per console role: the ones kept from an earlier run, or new ones."""
    admin = {"Authorization": f"Bearer {token}"}
    tokens: dict[str, str] = {}
    for role in CONSOLE_ROLES:
        key = f"console_token_{role}"
        kept = devstack.dev_credential(credentials, key)
        if kept is not None:
            probe = httpx.get(
                f"{api}/api/v1/alerts",
                params={"limit": 1},
                headers={"Authorization": f"Bearer {kept}"},
                timeout=10,
            )
            if probe.status_code == 200:
                tokens[role] = kept
                continue
        issued = httpx.post(
            f"{api}/api/v1/tokens",
            json={"name": f"demo {role}", "role": role},
            headers=admin,
            timeout=10,
        )
        issued.raise_for_status()
        tokens[role] = issued.json()["token"]
        devstack.save_dev_credential(credentials, key, tokens[role])
    return tokens


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal, `kill`, a service manager) stop the demo the
    way Ctrl-C does, so that mosquitto, influxd and `sigap up` are stopped too rather
    than left holding their ports."""
    before = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def run_demo(settings: Settings, *, devices: int, interval: float, console: Console) -> int:
    """Run everything until Ctrl-C (or SIGTERM, SIGHUP); returns the exit code."""
    with stop_on_signals():
        return _run_demo(settings, devices=devices, interval=interval, console=console)


def _run_demo(settings: Settings, *, devices: int, interval: float, console: Console) -> int:
    from simulators import SimConfig, run_simulation

    repo = devstack.REPO
    var = (repo / "var").resolve()
    logs = var / "log"
    logs.mkdir(parents=True, exist_ok=True)
    (var / "mosquitto").mkdir(exist_ok=True)
    (var / "influxdb").mkdir(exist_ok=True)
    services: list[devstack.Service] = []
    sigap_up: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    api = f"http://{settings.api.host}:{settings.api.port}"
    # The broker runs with authentication, as in production: Sigap's service account, the
    # provisioning admin and a developer account for the simulator, with passwords made
    # up on the first run and kept in var/dev-credentials.json. The API needs a bearer
    # token: SIGAP_ADMIN_TOKEN, or the one kept in the same file.
    credentials = var / "dev-credentials.json"
    auth = devstack.dev_accounts(credentials)
    token = settings.admin_token or devstack.dev_api_token(credentials)
    mqtt = settings.mqtt
    sigap_account = (
        mqtt.username or auth.service_username,
        mqtt.password or auth.service_password,
    )
    developer = (
        mqtt.developer_username or auth.developer_username,
        mqtt.developer_password or auth.developer_password,
    )
    try:
        if devstack.port_open(settings.mqtt.port):
            console.print(
                f"mosquitto: something already listens on {settings.mqtt.port}; using it "
                f"(it must know the accounts in {credentials})"
            )
        else:
            services.append(devstack.start_mosquitto(settings.mqtt.port, var, auth=auth))
            console.print(
                f"mosquitto: started on 127.0.0.1:{settings.mqtt.port} with authentication "
                f"(log {var / 'mosquitto.log'}, accounts {credentials})"
            )
        for name, port, argv in (
            (
                "influxd",
                int(settings.influx.url.rsplit(":", 1)[1].rstrip("/")),
                [devstack.require("influxd"), "-config", str(repo / "influxdb.conf")],
            ),
        ):
            if devstack.port_open(port):
                console.print(f"{name}: something already listens on {port}; using it")
                continue
            services.append(
                devstack.start(name, argv, port, logs / f"{name}.log", cwd=repo, timeout=60)
            )
            console.print(f"{name}: started on 127.0.0.1:{port} (log {logs / (name + '.log')})")
        if devstack.port_open(settings.api.port):
            raise devstack.StackError(
                f"port {settings.api.port} is taken; stop what runs there or set SIGAP_API_PORT"
            )
        up_log = logs / "sigap-up.log"
        with up_log.open("ab") as log_file:
            sigap_up = subprocess.Popen(
                [sys.executable, "-m", "sigap", "up"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=repo,
                env=os.environ
                | {
                    "SIGAP_DATA_DIR": str(var),
                    "SIGAP_ADMIN_TOKEN": token,
                    "SIGAP_MQTT_USERNAME": sigap_account[0],
                    "SIGAP_MQTT_PASSWORD": sigap_account[1],
                    "SIGAP_MQTT_ADMIN_USERNAME": mqtt.admin_username or auth.admin_username,
                    "SIGAP_MQTT_ADMIN_PASSWORD": mqtt.admin_password or auth.admin_password,
                },
                start_new_session=True,
            )
        _wait_ready(api, sigap_up, up_log)
        console.print(f"sigap up: ready (log {up_log})")
        _register_stations(api, token, console)
        signin = _console_tokens(api, token, credentials)
        console.rule("Sigap demo")
        console.print(
            f"Console       {api}/  (sign in with a token below; kept in {credentials})\n"
            f"  dispatcher  {signin['dispatcher']}\n"
            f"  crew        {signin['crew']}\n"
            f"  technician  {signin['technician']}\n"
            f"  admin       {token}\n"
            f"Admin token   {token}  (SIGAP_ADMIN_TOKEN; send as Authorization: Bearer)\n"
            f"API docs      {api}/docs\n"
            f"Alerts        {api}/api/v1/alerts?active=true\n"
            f"Live stream   curl -N -H 'Authorization: Bearer {token}' "
            f"{api}/api/v1/alerts/stream\n"
            f"Devices       {api}/api/v1/devices\n"
            f"Bins          {api}/api/v1/bins?full_within_h=8\n"
            f"Incidents     {api}/api/v1/incidents\n"
            f"Fire (CAP)    {api}/api/v1/alerts/cap\n"
            f"Rejected      {api}/api/v1/ingest/rejected\n"
            f"Metrics       {api}/metrics\n"
            f"MQTT alerts   mosquitto_sub -p {settings.mqtt.port} -u {developer[0]} "
            f"-P {developer[1]} -t 'sigap/alerts/#' -v\n"
            "A fire starts in one building about 30 s in, and five bins fill up. "
            "Alerts print below. Ctrl-C stops everything."
        )
        console.rule()
        threading.Thread(
            target=_print_alerts, args=(api, token, console, stop), daemon=True
        ).start()
        # The shipped scenario file simulators/scenarios/demo.toml: the same timeline the
        # integration tests check alert by alert.
        run_simulation(
            SimConfig.for_scenario(
                "demo",
                mqtt_host=settings.mqtt.host,
                mqtt_port=settings.mqtt.port,
                mqtt_username=developer[0],
                mqtt_password=developer[1],
                api_url=api,
                api_token=token,
                devices=devices,
                interval_s=interval,
            ),
            stop=stop,
            progress=True,
        )
        return 0
    except KeyboardInterrupt:
        console.print("\nstopping...")
        return 0
    except devstack.StackError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        return 1
    finally:
        stop.set()
        if sigap_up is not None and sigap_up.poll() is None:
            sigap_up.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                sigap_up.wait(30)
            if sigap_up.poll() is None:
                sigap_up.kill()
                sigap_up.wait()
        for service in reversed(services):
            service.stop()
        console.print("demo stopped; data kept in ./var (delete it for a fresh start)")
