"""Simulator errors, with the fields a caller needs to say what went wrong."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class: the simulation could not start or finish as asked."""


class BrokerUnavailableError(SimulatorError):
    """The MQTT broker could not be reached, or refused the connection."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"MQTT broker at {host}:{port} is not available: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


class RegistrationError(SimulatorError):
    """The device registry refused a device, or could not be reached in time."""

    def __init__(
        self, url: str, reason: str, status: int | None = None, body: str | None = None
    ) -> None:
        detail = f" (HTTP {status}: {body})" if status is not None else ""
        super().__init__(f"registering devices at {url} failed: {reason}{detail}")
        self.url = url
        self.reason = reason
        self.status = status
        self.body = body
