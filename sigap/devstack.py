"""Local mosquitto and influxd processes, for `sigap demo` and the integration tests.

Both run from the repo's own config files (mosquitto.conf, influxdb.conf), with ports and
data folders replaced where needed, so the tests exercise the configuration users run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """A local service could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on the port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def require(binary: str) -> str:
    """Full path of a binary, or a StackError saying how to install it."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise StackError(
            f"{binary} not found; install it with: "
            "apt-get install mosquitto mosquitto-clients influxdb (or run `make setup`)"
        )
    return path


@dataclass
class Service:
    """A started child process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop on SIGTERM; killing it", self.name)
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the service's log, for error messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start(
    name: str,
    argv: Sequence[str],
    port: int,
    log_path: Path,
    timeout: float = 30.0,
    cwd: Path | None = None,
) -> Service:
    """Start a process and wait until it accepts connections on `port`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        list(argv), stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
    )
    log_file.close()
    service = Service(name, process, port, log_path)
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if not service.alive():
            raise StackError(f"{name} exited with {process.returncode}:\n{service.log_tail()}")
        if time.monotonic() > deadline:
            service.stop()
            raise StackError(
                f"{name} did not listen on {port} in {timeout:.0f} s:\n{service.log_tail()}"
            )
        time.sleep(0.05)  # polling a port while a child process starts up
    return service


def mosquitto_config(port: int, data_dir: Path, template: Path = REPO / "mosquitto.conf") -> str:
    """The repo's mosquitto.conf with the listener port and persistence folder replaced."""
    text = template.read_text()
    text, listeners = re.subn(r"(?m)^listener\s+\d+", f"listener {port}", text)
    text, locations = re.subn(
        r"(?m)^persistence_location\s+.*$", f"persistence_location {data_dir}/", text
    )
    if listeners != 1 or locations != 1:
        raise StackError(f"{template}: expected one listener and one persistence_location line")
    return text


def influxdb_config(
    http_port: int, rpc_port: int, data_dir: Path, template: Path = REPO / "influxdb.conf"
) -> str:
    """The repo's influxdb.conf with ports and data folders replaced."""
    text = template.read_text()
    text = re.sub(r'(?m)^bind-address = "[^"]*"', f'bind-address = "127.0.0.1:{rpc_port}"', text)
    text = re.sub(
        r'(?m)^(\s+)bind-address = "[^"]*"', rf'\1bind-address = "127.0.0.1:{http_port}"', text
    )
    text = text.replace('"./var/influxdb/', f'"{data_dir}/')
    if re.search(r"(?m)^[^#\n]*\./var/", text):
        raise StackError(f"{template}: a ./var/ path was not replaced")
    return text


def start_mosquitto(port: int, workdir: Path) -> Service:
    """mosquitto on 127.0.0.1:port with its persistence under workdir."""
    binary = require("mosquitto")
    (workdir / "mosquitto").mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_config(port, workdir / "mosquitto"))
    return start("mosquitto", [binary, "-c", str(conf)], port, workdir / "mosquitto.log")


def start_influxd(port: int, workdir: Path, rpc_port: int | None = None) -> Service:
    """influxd (1.x) on 127.0.0.1:port with its data under workdir."""
    binary = require("influxd")
    data = workdir / "influxdb"
    data.mkdir(parents=True, exist_ok=True)
    conf = workdir / "influxdb.conf"
    conf.write_text(influxdb_config(port, rpc_port or free_port(), data))
    return start(
        "influxd", [binary, "-config", str(conf)], port, workdir / "influxd.log", timeout=60
    )


@contextlib.contextmanager
def running(*services: Service) -> Iterator[tuple[Service, ...]]:
    """Stop the services (in reverse order) when the block ends."""
    try:
        yield services
    finally:
        for service in reversed(services):
            service.stop()
