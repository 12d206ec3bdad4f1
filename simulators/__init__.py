"""Simulated fleets of fire detectors and waste-bin sensors that publish readings over MQTT."""

from simulators.config import SimConfig, SimSummary
from simulators.errors import BrokerUnavailableError, RegistrationError, SimulatorError
from simulators.fleet import Fleet, SimDevice, generate_fleet
from simulators.publisher import run_simulation
from simulators.scenario import SCENARIOS, Scenario, build_scenario

__all__ = [
    "SCENARIOS",
    "BrokerUnavailableError",
    "Fleet",
    "RegistrationError",
    "Scenario",
    "SimConfig",
    "SimDevice",
    "SimSummary",
    "SimulatorError",
    "build_scenario",
    "generate_fleet",
    "run_simulation",
]
