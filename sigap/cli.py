"""The `sigap` command: up (the service), ingest (another worker), simulate (a fleet), demo."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Annotated, Any

import typer
from rich.console import Console

from sigap.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request at INFO; the simulator registers hundreds of devices.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # apscheduler logs two INFO lines per job run (several jobs every few seconds), which
    # buried what happened in the service log; its warnings and errors still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@app.command()
def up() -> None:
    """Run ingest, rules, alerts and the API against the configured MQTT, InfluxDB and SQL."""
    _serve(api=True)


@app.command()
def ingest() -> None:
    """Run one more ingest worker (ingest, rules, alert events; /healthz, /readyz, /metrics).

    Set SIGAP_INGEST_WORKERS to the number of workers, `sigap up` included, and
    SIGAP_INGEST_WORKER to this one's number (docs/deploy.md).
    """
    _serve(api=False)


def _serve(*, api: bool) -> None:
    import uvicorn

    from sigap import migrations
    from sigap.runtime import build_app

    settings = Settings()
    ing = settings.ingest
    if not api and ing.workers < 2:
        # With one worker it would share `sigap up`'s MQTT session and take it over.
        console.print(
            "[red]sigap ingest is an additional worker: set SIGAP_INGEST_WORKERS to the "
            "number of workers (2 or more, `sigap up` included) and SIGAP_INGEST_WORKER to "
            "this one's number[/red]"
        )
        raise typer.Exit(2)
    _logging(settings.log_level)
    logging.getLogger("sigap").info(
        "sigap %s: MQTT %s, InfluxDB %s/%s, SQL %s, %s http://%s:%d%s",
        "up" if api else "ingest",
        settings.mqtt.url,
        settings.influx.url,
        settings.influx.db,
        migrations.redact(settings.sql_url),
        "API" if api else "health and metrics",
        settings.api.host,
        settings.api.port,
        f", ingest worker {ing.worker} of {ing.workers}" if ing.workers > 1 else "",
    )
    uvicorn.run(
        build_app(settings, serve_api=api),
        host=settings.api.host,
        port=settings.api.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@app.command()
def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            help="Shipped scenario (demo, quiet, bins-baamang, faults, stuck-sensor) or a "
            ".toml file; it sets the fleet and run defaults below."
        ),
    ] = "demo",
    devices: Annotated[
        int | None, typer.Option(help="Fleet size (fire detectors and bins).")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(help="Wall seconds between readings per device.")
    ] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    fire_share: Annotated[float | None, typer.Option(help="Share of fire detectors.")] = None,
    fleet_file: Annotated[
        str | None, typer.Option(help="CSV/JSON fleet in the registry's device format.")
    ] = None,
    gateways: Annotated[int | None, typer.Option(help="Gateways of a generated fleet.")] = None,
    envelope: Annotated[
        str, typer.Option(help="direct, gateway (batches), tts (The Things Stack v3), chirpstack.")
    ] = "direct",
    seed: Annotated[int, typer.Option(help="Fleet and model seed.")] = 7,
    qos: Annotated[int, typer.Option(min=0, max=2)] = 1,
    speed: Annotated[float | None, typer.Option(help="Model-time acceleration.")] = None,
    event_time: Annotated[
        str | None, typer.Option(help="wall (ts = now) or model (ts follows model time).")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Fixed total readings/s (sets the interval).")
    ] = None,
    max_rate: Annotated[bool, typer.Option(help="Publish as fast as possible.")] = False,
    id_prefix: Annotated[str, typer.Option(help="Device id prefix.")] = "sim",
    register: Annotated[bool, typer.Option(help="Register the fleet through the API.")] = True,
    api_url: Annotated[
        str | None, typer.Option(help="API base URL (default from settings).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a live progress line.")] = True,
    replay: Annotated[
        str | None, typer.Option(help="Replay this CSV trace as one device instead.")
    ] = None,
    replay_device: Annotated[str, typer.Option(help="Device id the trace plays as.")] = "replay-1",
    column: Annotated[
        list[str] | None,
        typer.Option(help="quantity=CSV column for --replay (repeat), e.g. temp_c=T1."),
    ] = None,
    time_column: Annotated[str, typer.Option(help="Seconds column of the trace.")] = "Time",
    every: Annotated[float, typer.Option(help="Replay one row per this many seconds.")] = 0.0,
) -> None:
    """Publish a simulated fleet's readings (or a recorded trace) over MQTT (SIGAP_MQTT_URL)."""
    from simulators import SimConfig, SimulatorError, run_simulation
    from simulators.publisher import run_replay
    from simulators.replay import load_trace, parse_columns

    settings = Settings()
    _logging(settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        config = SimConfig.for_scenario(
            scenario,
            mqtt_host=settings.mqtt.host,
            mqtt_port=settings.mqtt.port,
            # The simulator speaks for many devices at once: the developer account
            # (a production broker has none; there each device has its own).
            mqtt_username=settings.mqtt.developer_username,
            mqtt_password=settings.mqtt.developer_password,
            api_url=(api_url or f"http://{settings.api.host}:{settings.api.port}")
            if register and replay is None
            else None,
            api_token=settings.admin_token,
            devices=devices,
            fire_share=fire_share,
            interval_s=interval,
            duration_s=duration,
            seed=seed,
            qos=qos,
            id_prefix=id_prefix,
            speed=speed,
            fleet_file=fleet_file,
            gateways=gateways,
            envelope=envelope,
            event_time=event_time,
            rate=rate,
            max_rate=max_rate,
        )
        if replay is not None:
            trace = load_trace(replay, parse_columns(column or []), time_column).every(every)
            console.print(run_replay(config, trace, replay_device, stop=stop).line())
            return
        run_simulation(config, stop=stop, progress=progress)
    except (SimulatorError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        stop.set()


@app.command()
def demo(
    devices: Annotated[int, typer.Option(help="Fleet size.")] = 300,
    interval: Annotated[float, typer.Option(help="Seconds between readings per device.")] = 10.0,
) -> None:
    """Start mosquitto, influxd, `sigap up` and a simulated fleet; Ctrl-C stops everything."""
    from sigap.demo import run_demo

    settings = Settings()
    _logging(settings.log_level)
    sys.exit(run_demo(settings, devices=devices, interval=interval, console=console))


devices_app = typer.Typer(no_args_is_help=True, help="The device registry.")
app.add_typer(devices_app, name="devices")


@devices_app.command("import")
def devices_import(
    file: Annotated[
        str, typer.Argument(help="CSV file: a header of device fields, a device a row.")
    ],
    api: Annotated[
        str | None, typer.Option(help="API base URL (default from SIGAP_API_HOST/PORT).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Bearer token (default SIGAP_ADMIN_TOKEN).")
    ] = None,
) -> None:
    """Register every device in a CSV file, or none: prints the error of each bad row."""
    import httpx
    from rich.table import Table

    out = Console()
    try:
        with open(file, "rb") as handle:
            body = handle.read()
    except OSError as exc:
        console.print(f"[red]cannot read {file}: {exc.strerror or exc}[/red]")
        raise typer.Exit(2) from None
    base, headers = _api_endpoint(api, token)
    headers["Content-Type"] = "text/csv"
    try:
        response = httpx.post(
            f"{base}/api/v1/devices/import", content=body, headers=headers, timeout=120
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach the API at {base}: {exc}[/red]")
        raise typer.Exit(2) from None
    detail = response.json() if "json" in response.headers.get("content-type", "") else {}
    if response.status_code == 201:
        out.print(f"[green]imported {detail['created']} devices from {file}[/green]")
        return
    report = detail.get("detail") if isinstance(detail, dict) else None
    if response.status_code != 422 or not isinstance(report, dict):
        console.print(f"[red]the API answered {response.status_code}: {response.text[:500]}[/red]")
        raise typer.Exit(2)
    table = Table("row", "field", "problem", title=f"{file}: nothing imported")
    for error in report["errors"]:
        table.add_row(str(error["row"]), error["field"] or "", error["message"])
    out.print(table)
    out.print(f"[red]{len(report['errors'])} problem(s) in {report['rows']} rows[/red]")
    raise typer.Exit(1)


@devices_app.command("watch")
def devices_watch(
    device_id: Annotated[str, typer.Argument(help="The device to follow.")],
    api: Annotated[
        str | None, typer.Option(help="API base URL (default from SIGAP_API_HOST/PORT).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Bearer token (default SIGAP_ADMIN_TOKEN).")
    ] = None,
    every: Annotated[float, typer.Option(help="Seconds between looks.", min=0.2)] = 2.0,
    count: Annotated[
        int | None, typer.Option(help="Stop after this many new readings (default: Ctrl-C).")
    ] = None,
) -> None:
    """Follow a device's readings and rejected messages as they arrive (first contact)."""
    import time

    import httpx

    base, headers = _api_endpoint(api, token)
    out = Console()
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        try:
            found = client.get(f"/api/v1/devices/{device_id}")
        except httpx.HTTPError as exc:
            console.print(f"[red]cannot reach the API at {base}: {exc}[/red]")
            raise typer.Exit(2) from None
        if found.status_code != 200:
            console.print(f"[red]{device_id}: the API answered {found.status_code}: {found.text}")
            raise typer.Exit(2)
        device = found.json()
        out.print(
            f"[bold]{device['id']}[/bold] {device['kind']} ({device.get('status', 'active')}), "
            f"last seen {device.get('last_seen') or 'never'}, battery "
            f"{device.get('battery_v') or device.get('battery_pct') or '?'}, "
            f"RSSI {device.get('rssi_dbm') or '?'}; waiting for readings (Ctrl-C stops)"
        )

        def latest_readings() -> list[dict[str, Any]]:
            return _get_list(client, f"/api/v1/devices/{device_id}/readings", {"limit": 50})

        def latest_rejects() -> list[dict[str, Any]]:
            params = {"device_id": device_id, "limit": 50}
            return _get_list(client, "/api/v1/ingest/rejected", params)

        seen_ts = {r["ts"] for r in latest_readings()}
        seen_rejects = {r["id"] for r in latest_rejects()}
        new_readings = 0
        try:
            while count is None or new_readings < count:
                for reading in reversed(latest_readings()):  # oldest new one first
                    if reading["ts"] in seen_ts:
                        continue
                    seen_ts.add(reading["ts"])
                    new_readings += 1
                    values = ", ".join(
                        f"{k}={v}" for k, v in reading.items() if k not in ("ts", "device_id")
                    )
                    out.print(f"[green]{reading['ts']}[/green] {values}")
                for reject in reversed(latest_rejects()):
                    if reject["id"] not in seen_rejects:
                        seen_rejects.add(reject["id"])
                        out.print(f"[red]rejected[/red] {reject['reason']}: {reject['detail']}")
                if count is None or new_readings < count:
                    time.sleep(every)  # polling the API at the pace the technician chose
        except KeyboardInterrupt:
            return


def _api_endpoint(api: str | None, token: str | None) -> tuple[str, dict[str, str]]:
    """The API base URL and auth headers: the options, else SIGAP_API_* and SIGAP_ADMIN_TOKEN."""
    settings = Settings()
    base = (api or f"http://{settings.api.host}:{settings.api.port}").rstrip("/")
    token = token or settings.admin_token
    return base, {"Authorization": f"Bearer {token}"} if token else {}


def _get_list(client: Any, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """GET a JSON list; [] when the API does not answer (the next look tries again)."""
    import httpx

    try:
        response = client.get(path, params=params)
    except httpx.HTTPError:
        return []
    body = response.json() if response.status_code == 200 else []
    return body if isinstance(body, list) else []


db = typer.Typer(
    no_args_is_help=True, help="The SQL schema (SIGAP_DATABASE_URL): Alembic migrations."
)
app.add_typer(db, name="db")


def _database_url() -> str:
    settings = Settings()
    _logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # where the default SQLite file goes
    return settings.sql_url


@db.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database to the newest schema (`sigap up` also does this at start)."""
    import asyncio

    from sigap import migrations

    url = _database_url()
    try:
        asyncio.run(migrations.upgrade_url(url, revision))
        current = asyncio.run(migrations.current_url(url))
    except migrations.SchemaError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"{migrations.redact(url)}: at {', '.join(current) or 'no revision'}")


@db.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one."""
    import asyncio

    from sigap import migrations

    url = _database_url()
    current = asyncio.run(migrations.current_url(url))
    head = migrations.head()
    at = ", ".join(current) or "none (not migrated yet)"
    typer.echo(f"database: {migrations.redact(url)}\ncurrent:  {at}\nhead:     {head}")
    if head not in current:
        typer.echo("run `sigap db upgrade` (or start `sigap up`) to migrate it")


@db.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the change does.")],
) -> None:
    """Write a migration for what the table modules have and the migrations lack."""
    from sigap import migrations

    _logging(Settings().log_level)
    path = migrations.revision(message)
    console.print(f"wrote {path}: review it before committing")


def main() -> None:
    """Entry point for `python -m sigap`."""
    app()
