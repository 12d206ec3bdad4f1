"""Sigap's fire rules against the real smoke alarms of NIST's home smoke alarm tests
(bench/smoke_alarms.py; the data in tests/data/nist-dunes-2000): never an alert before
the fire, every station found, the clear-air thresholds earlier than the old ones, and the
table in docs/rules.md is what the code gives. Issue #19's target (no later than the real
alarms in the median, more than 30 s later at no more than one station in 36) holds
against the photoelectric alarms, not yet against the first alarm of each station, mostly
an ionization one: docs/rules.md says by how much."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import smoke_alarms
from contract.thresholds import RuleParams

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


@pytest.fixture(scope="module")
def outcomes() -> list[smoke_alarms.Outcome]:
    """Every station of every test, with the default thresholds."""
    return smoke_alarms.compare()


def test_every_test_is_replayed(outcomes: list[smoke_alarms.Outcome]) -> None:
    replayed = {(o.test, o.station) for o in outcomes}
    for test in smoke_alarms.tests():
        stations = {t.station for t in smoke_alarms.traces(test)}
        alarmed = set(smoke_alarms.first_real_alarms(test))
        assert stations, f"{test}: no station with a smoke meter"
        # Every station that had both a meter and an alarm is in the table.
        assert {(test, s) for s in stations & alarmed} <= replayed


def test_no_fire_alert_before_ignition(outcomes: list[smoke_alarms.Outcome]) -> None:
    early = [(o.test, o.station, o.early_alerts) for o in outcomes if o.early_alerts]
    assert early == []


def test_every_station_alerts(outcomes: list[smoke_alarms.Outcome]) -> None:
    assert all(o.sigap_s is not None for o in outcomes), smoke_alarms.markdown(outcomes)


def flaming(outcomes: list[smoke_alarms.Outcome]) -> list[smoke_alarms.Outcome]:
    """The outcomes of the flaming tests (curated activation times)."""
    return [o for o in outcomes if o.test in smoke_alarms.FIRES]


def test_the_target_holds_against_the_photoelectric_alarms(
    outcomes: list[smoke_alarms.Outcome],
) -> None:
    summary = smoke_alarms.summarise(flaming(outcomes))
    assert summary.photo_stations >= 35
    assert summary.photo_median_s <= 0
    assert summary.photo_late <= summary.photo_stations / 36


def test_sigap_is_first_at_every_smouldering_station(
    outcomes: list[smoke_alarms.Outcome],
) -> None:
    smouldering = [o for o in outcomes if o.test in smoke_alarms.SMOULDERING]
    assert smouldering
    assert all(o.delay_s < 0 for o in smouldering), smoke_alarms.markdown(smouldering)


def test_the_old_thresholds_were_later(outcomes: list[smoke_alarms.Outcome]) -> None:
    # What lowering the clear-air thresholds bought (and a check that the comparison can
    # tell thresholds apart at all).
    old = smoke_alarms.summarise(
        flaming(
            smoke_alarms.compare(
                RuleParams().override({"smoke_prealarm_pct_m": 5.0, "smoke_alarm_pct_m": 10.0})
            )
        )
    )
    new = smoke_alarms.summarise(flaming(outcomes))
    assert new.median_delay_s < old.median_delay_s
    assert new.late < old.late


def test_the_docs_show_the_table_the_code_gives(outcomes: list[smoke_alarms.Outcome]) -> None:
    assert smoke_alarms.markdown(outcomes) in DOCS.read_text(), (
        "docs/rules.md's delay table is out of date: paste `python -m bench.smoke_alarms`"
    )


def test_optical_density_converts_to_obscuration() -> None:
    # 1 OD/m lets 10 % of the light through a metre: 90 %/m.
    assert math.isclose(smoke_alarms.od_to_obscuration(1.0), 90.0)
    assert smoke_alarms.od_to_obscuration(0.0) == 0.0


@pytest.mark.parametrize(
    "test", [t for t in smoke_alarms.tests() if t not in smoke_alarms.SMOULDERING]
)
def test_analog_outputs_give_the_curated_activation_times(test: str) -> None:
    curated = smoke_alarms.activation_times()
    read = smoke_alarms.analog_activations(test)
    # The data keep the analog outputs of Ion3 and Pho1 at stations A, C and D.
    names = [
        name.split("-")[1]
        for name in curated
        if name.startswith(f"{test}-")
        and name.split("-")[1][:4] in smoke_alarms.ANALOG_ALARMS
        and name[-1] in "ACD"
    ]
    compared = {n: (read.get(n), curated[f"{test}-{n}"]) for n in names}
    off = {n: v for n, v in compared.items() if v[0] is None or abs(v[0] - v[1]) > 8}
    assert off == {}, f"{test}: read vs curated {off}"


def test_an_alert_on_a_passing_blip_is_not_credited() -> None:
    times = [float(t) for t in range(0, 120, 2)]
    smoke = [0.0] * len(times)
    smoke[5] = smoke[6] = 3.0  # two samples of meter noise at 10..12 s
    for i in range(40, len(times)):
        smoke[i] = 5.0  # the smoke arrives at 80 s and stays
    trace = smoke_alarms.Trace("T", "A", times, smoke, [25.0] * len(times), ignition_s=0.0)
    params = RuleParams()
    first = next(t for t, e in smoke_alarms.replay(trace) if e.category == "fire")
    assert first == 10.0  # Sigap does raise a pre-alarm on the blip...
    assert not smoke_alarms.lasting(trace, 10.0, params)  # ...which did not last
    assert smoke_alarms.lasting(trace, 80.0, params)


def test_every_smouldering_station_has_alarms_read_from_its_outputs() -> None:
    for test in smoke_alarms.SMOULDERING:
        alarms = smoke_alarms.real_alarms(test)
        stations = {t.station for t in smoke_alarms.traces(test)}
        assert alarms, f"{test}: no analog output showed an alarm"
        assert set(alarms) <= set("ACD"), alarms  # the stations whose outputs were kept
        assert stations & set(alarms), f"{test}: no station with both a meter and an alarm"


def test_the_docs_give_the_rate_trials_the_code_gives(outcomes: list[smoke_alarms.Outcome]) -> None:
    # docs/rules.md says why the smoke rate criterion was not built: its measured cost.
    for tau_s, rise in smoke_alarms.RATE_TRIALS:
        assert smoke_alarms.rate_trial(outcomes, tau_s, rise) in DOCS.read_text()
