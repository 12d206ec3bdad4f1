"""The `sigap` command: up (the service), simulate (a fleet), demo (everything, locally)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Annotated

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


@app.command()
def up() -> None:
    """Run ingest, rules, alerts and the API against the configured MQTT, InfluxDB and SQL."""
    import uvicorn

    from sigap.runtime import build_app

    settings = Settings()
    _logging(settings.log_level)
    logging.getLogger("sigap").info(
        "sigap up: MQTT %s, InfluxDB %s/%s, SQL %s, API http://%s:%d",
        settings.mqtt.url,
        settings.influx.url,
        settings.influx.db,
        settings.sql_url,
        settings.api.host,
        settings.api.port,
    )
    uvicorn.run(
        build_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@app.command()
def simulate(
    devices: Annotated[int, typer.Option(help="Fleet size (fire detectors and bins).")] = 300,
    interval: Annotated[float, typer.Option(help="Seconds between readings per device.")] = 10.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    scenario: Annotated[
        str, typer.Option(help="demo (a fire at 30 s, bins filling) or quiet.")
    ] = "demo",
    fire_share: Annotated[float, typer.Option(help="Share of fire detectors.")] = 0.6,
    seed: Annotated[int, typer.Option(help="Fleet and model seed.")] = 7,
    qos: Annotated[int, typer.Option(min=0, max=2)] = 1,
    speed: Annotated[float, typer.Option(help="Model-time acceleration.")] = 1.0,
    id_prefix: Annotated[str, typer.Option(help="Device id prefix.")] = "sim",
    register: Annotated[bool, typer.Option(help="Register the fleet through the API.")] = True,
    api_url: Annotated[
        str | None, typer.Option(help="API base URL (default from settings).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a live progress line.")] = True,
) -> None:
    """Publish a simulated fleet's readings over MQTT (SIGAP_MQTT_URL)."""
    from simulators import SimConfig, run_simulation

    settings = Settings()
    _logging(settings.log_level)
    config = SimConfig(
        mqtt_host=settings.mqtt.host,
        mqtt_port=settings.mqtt.port,
        mqtt_username=settings.mqtt.username,
        mqtt_password=settings.mqtt.password,
        api_url=(api_url or f"http://{settings.api.host}:{settings.api.port}")
        if register
        else None,
        api_token=settings.admin_token,
        devices=devices,
        fire_share=fire_share,
        interval_s=interval,
        duration_s=duration,
        scenario=scenario,
        seed=seed,
        qos=qos,
        id_prefix=id_prefix,
        speed=speed,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_simulation(config, stop=stop, progress=progress)
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


def main() -> None:
    """Entry point for `python -m sigap`."""
    app()
