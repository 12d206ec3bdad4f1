"""Rule parameters: presets, the rules file, per-device overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.thresholds import EN54_5_CLASSES, RuleParams, RulesConfigError
from rules.params import load_rules, parse_rules

REPO = Path(__file__).resolve().parents[2]


def test_en54_5_presets() -> None:
    assert RuleParams().with_heat_class("A1").heat_fixed_c == 54
    assert RuleParams().with_heat_class("g").heat_fixed_c == EN54_5_CLASSES["G"] == 144
    static = RuleParams().with_heat_class("BS")
    assert static.heat_fixed_c == 69 and static.ror_enabled is False
    assert RuleParams(ror_enabled=False).with_heat_class("CR").ror_enabled is True
    with pytest.raises(RulesConfigError, match="unknown EN 54-5 class"):
        RuleParams().with_heat_class("H")


def test_example_rules_file_loads() -> None:
    config = load_rules(REPO / "config" / "rules.example.toml")
    kitchen = config.params_for("k1", "fire", "kitchen")
    assert kitchen.heat_fixed_c == 69 and not kitchen.ror_enabled
    assert kitchen.smoke_alarm_pct_m == 15 and kitchen.smoke_prealarm_pct_m == 5
    assert config.params_for("b1", "bin", "market-bin").bin_confirm_readings == 3
    assert config.params_for("b1", "bin").heat_fixed_c == 60  # the bin kind's default
    pasar = config.params_for("fire-pasar-07", "fire")
    assert pasar.heat_fixed_c == 65
    # The registry's overrides come last.
    assert config.params_for("fire-pasar-07", "fire", None, {"heat_fixed_c": 70}).heat_fixed_c == 70


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"classes": {"x": {"heat_fixed_c": 60}}}, "needs `extends`"),
        ({"classes": {"x": {"extends": "nope"}}}, "extends unknown 'nope'"),
        ({"classes": {"x": {"extends": "y"}, "y": {"extends": "x"}}}, "circular"),
        ({"classes": {"fire": {"smoke_alarm": 3}}}, "unknown rule parameter 'smoke_alarm'"),
        ({"devices": {"d": {"bin_confirm_readings": 1.5}}}, "whole number"),
        ({"devices": {"d": {"ror_enabled": 1}}}, "true or false"),
        ({"devices": {"d": {"confirm_distance_m": float("nan")}}}, "got NaN"),
        ({"device": {}}, "unknown sections"),
    ],
)
def test_bad_rules_say_what_is_wrong(data: dict[str, object], message: str) -> None:
    with pytest.raises(RulesConfigError, match=message):
        parse_rules(data)


def test_unreadable_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[classes.fire\n")
    with pytest.raises(RulesConfigError, match="cannot read rules file"):
        load_rules(path)
