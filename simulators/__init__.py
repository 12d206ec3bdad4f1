"""Simulated fleets of fire detectors and waste-bin sensors that publish readings over MQTT."""

from simulators.config import SimConfig, SimSummary
from simulators.errors import BrokerUnavailableError, RegistrationError, SimulatorError
from simulators.fleet import Fleet, SimDevice, generate_fleet
from simulators.fleet_file import FleetFileError, load_fleet_file
from simulators.publisher import run_replay, run_simulation
from simulators.replay import Trace, TraceError, load_trace
from simulators.scenario import SCENARIOS, Scenario, build_scenario
from simulators.scenario_file import ScenarioFileError, load_scenario_spec, shipped_scenarios

__all__ = [
    "SCENARIOS",
    "BrokerUnavailableError",
    "Fleet",
    "FleetFileError",
    "RegistrationError",
    "Scenario",
    "ScenarioFileError",
    "SimConfig",
    "SimDevice",
    "SimSummary",
    "SimulatorError",
    "Trace",
    "TraceError",
    "build_scenario",
    "generate_fleet",
    "load_fleet_file",
    "load_scenario_spec",
    "load_trace",
    "run_replay",
    "run_simulation",
    "shipped_scenarios",
]
