"""Local mosquitto and influxd processes, for `sigap demo` and the integration tests.

Both run from the repo's own config files (mosquitto.conf, influxdb.conf), with ports and
data folders replaced where needed, so the tests exercise the configuration users run.
`start_mosquitto(..., auth=BrokerAuth(...))` runs the broker with anonymous access off and
mosquitto's dynamic security plugin, seeded with a provisioning admin and Sigap's service
account (devices/provisioning/README.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sigap.settings import MqttSettings

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


DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"


@dataclass(frozen=True)
class BrokerAuth:
    """Accounts for a mosquitto run with authentication (the dynamic security plugin)."""

    admin_username: str
    admin_password: str = field(repr=False)
    service_username: str
    service_password: str = field(repr=False)
    plugin: Path | None = None  # None: found by dynsec_plugin_path()
    # Development and tests only: one account that publishes as any device (simulators).
    developer_username: str | None = None
    developer_password: str | None = field(default=None, repr=False)

    @property
    def developer(self) -> tuple[str, str] | None:
        """(username, password) of the developer account, if there is one."""
        if self.developer_username and self.developer_password:
            return self.developer_username, self.developer_password
        return None


def _dev_credentials(path: Path) -> dict[str, str]:
    """The local stack's accounts and API token: read from path, or made up once and saved."""
    import json  # local: only the development stack needs it

    if path.exists():
        saved: dict[str, str] = json.loads(path.read_text())
        return saved
    saved = {
        "admin_username": "sigap-admin",
        "admin_password": secrets.token_urlsafe(18),
        "service_username": "sigap",
        "service_password": secrets.token_urlsafe(18),
        "developer_username": "sigap-dev",
        "developer_password": secrets.token_urlsafe(18),
        "api_token": secrets.token_urlsafe(24),
    }
    _write_credentials(path, saved)
    return saved


def _write_credentials(path: Path, saved: dict[str, str]) -> None:
    """Write the credentials file, readable by its owner only."""
    import json  # local: only the development stack needs it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(saved, out, indent=2)


def dev_accounts(path: Path) -> BrokerAuth:
    """The local stack's broker accounts (see _dev_credentials).

    For `make demo` and benchmarks on one machine: random passwords kept in a file only
    its owner may read, so that a restart finds the broker's accounts unchanged.
    """
    saved = _dev_credentials(path)
    return BrokerAuth(
        saved["admin_username"],
        saved["admin_password"],
        saved["service_username"],
        saved["service_password"],
        developer_username=saved["developer_username"],
        developer_password=saved["developer_password"],
    )


def dev_api_token(path: Path) -> str:
    """The local stack's admin API token, saved next to its broker accounts."""
    return _dev_credentials(path)["api_token"]


def save_dev_credential(path: Path, name: str, value: str) -> None:
    """Add or replace one entry of the local stack's credentials file (owner-only)."""
    saved = _dev_credentials(path)
    saved[name] = value
    _write_credentials(path, saved)


def dev_credential(path: Path, name: str) -> str | None:
    """One entry of the local stack's credentials file, if it is there."""
    return _dev_credentials(path).get(name)


def broker_auth(mqtt: MqttSettings) -> BrokerAuth:
    """BrokerAuth from SIGAP_MQTT_ADMIN_USERNAME/_PASSWORD and SIGAP_MQTT_USERNAME/_PASSWORD."""
    admin, service = (mqtt.admin_username, mqtt.admin_password), (mqtt.username, mqtt.password)
    if None in admin or None in service:
        raise StackError(
            "a broker with authentication needs SIGAP_MQTT_ADMIN_USERNAME, "
            "SIGAP_MQTT_ADMIN_PASSWORD, SIGAP_MQTT_USERNAME and SIGAP_MQTT_PASSWORD"
        )
    return BrokerAuth(
        str(mqtt.admin_username),
        str(mqtt.admin_password),
        str(mqtt.username),
        str(mqtt.password),
        plugin=mqtt.dynsec_plugin,
    )


def dynsec_plugin_path(override: Path | None = None) -> Path:
    """Where mosquitto's dynamic security plugin is installed, or a StackError."""
    if override is not None:
        if not override.is_file():
            raise StackError(f"dynamic security plugin {override} does not exist")
        return override
    # Debian/Ubuntu put it in the multiarch folder (/usr/lib/x86_64-linux-gnu/, or
    # aarch64-linux-gnu/ on ARM); source builds and other distributions use plain lib dirs.
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    candidates = [
        *([Path("/usr/lib") / multiarch / DYNSEC_PLUGIN] if multiarch else []),
        *sorted(Path("/usr/lib").glob(f"*-linux-gnu*/{DYNSEC_PLUGIN}")),
        *(Path(d) / DYNSEC_PLUGIN for d in ("/usr/lib", "/usr/lib64", "/usr/local/lib")),
        *(Path(d) / "mosquitto" / DYNSEC_PLUGIN for d in ("/usr/lib", "/usr/local/lib")),
        Path("/opt/homebrew/lib") / DYNSEC_PLUGIN,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(sorted({str(c.parent) for c in candidates}))
    raise StackError(
        f"{DYNSEC_PLUGIN} not found (looked in {looked}); "
        "install mosquitto 2.x or set SIGAP_MQTT_DYNSEC_PLUGIN to its path"
    )


def ensure_dynsec_config(path: Path, auth: BrokerAuth) -> bool:
    """Write the initial dynamic-security.json unless one exists; True when written.

    An existing file is kept: the plugin saves every provisioned account into it, and those
    must survive a broker restart. Delete it to start over with `auth`'s accounts.
    """
    # Imported here so that the default (anonymous) stack does not need the package.
    from devices.provisioning.dynsec_config import write_initial_config

    if path.exists():
        return False
    write_initial_config(
        path,
        admin_username=auth.admin_username,
        admin_password=auth.admin_password,
        service_username=auth.service_username,
        service_password=auth.service_password,
        developer=auth.developer,
    )
    return True


def mosquitto_config(
    port: int,
    data_dir: Path,
    template: Path = REPO / "mosquitto.conf",
    *,
    plugin: Path | None = None,
    dynsec_file: Path | None = None,
) -> str:
    """The repo's mosquitto.conf with the listener port and persistence folder replaced.

    With `plugin` and `dynsec_file`, also with anonymous access off and authentication and
    ACLs through the dynamic security plugin (whatever the template says about them).
    """
    text = template.read_text()
    text, listeners = re.subn(r"(?m)^listener\s+\d+", f"listener {port}", text)
    text, locations = re.subn(
        r"(?m)^persistence_location\s+.*$", f"persistence_location {data_dir}/", text
    )
    if listeners != 1 or locations != 1:
        raise StackError(f"{template}: expected one listener and one persistence_location line")
    if (plugin is None) != (dynsec_file is None):
        raise StackError("mosquitto_config: give both plugin and dynsec_file, or neither")
    if plugin is not None and dynsec_file is not None:
        # Drop the template's own settings of these (the shipped file allows anonymous
        # access; a later one may load the plugin from another path) and set ours.
        text = re.sub(r"(?m)^(allow_anonymous|plugin|plugin_opt_config_file)\b.*\n?", "", text)
        text += (
            "\n# --- set by sigap.devstack: authentication and ACLs by dynamic security\n"
            f"plugin {plugin}\n"
            f"plugin_opt_config_file {dynsec_file}\n"
            "allow_anonymous false\n"
        )
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


def start_mosquitto(port: int, workdir: Path, auth: BrokerAuth) -> Service:
    """mosquitto on 127.0.0.1:port as the repo's mosquitto.conf says, its data under workdir.

    Anonymous access is off; the dynamic security plugin decides, from
    workdir/mosquitto/dynamic-security.json (created with auth's accounts if missing).
    """
    binary = require("mosquitto")
    data = workdir / "mosquitto"
    data.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    plugin = dynsec_plugin_path(auth.plugin)
    dynsec_file = data / "dynamic-security.json"
    ensure_dynsec_config(dynsec_file, auth)
    conf.write_text(mosquitto_config(port, data, plugin=plugin, dynsec_file=dynsec_file))
    _stay_root_if_root(conf)
    return start("mosquitto", [binary, "-c", str(conf)], port, workdir / "mosquitto.log")


def _stay_root_if_root(conf: Path) -> None:
    """Started as root, mosquitto drops to the `mosquitto` user, which cannot write into
    a root-owned work folder (pytest's are 0700, and so is /root): it then cannot read its
    dynamic security file nor save its persistence file, and a restart silently loses the
    queued QoS 1 messages of persistent sessions. This local development broker stays
    root instead; a production broker runs as its own user with its own folders.
    """
    if os.geteuid() == 0:
        with conf.open("a") as out:
            out.write(
                "\n# devstack: started by root, keep root so it can write its data\nuser root\n"
            )


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
