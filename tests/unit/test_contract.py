"""The contract's tables agree with each other and with the stages that use them."""

from __future__ import annotations

from contract import alerts, topics
from contract.readings import KIND_CODES, QUANTITIES, RANGES, UNITS, DeviceKind
from dispatch import cap
from rules import bins, fire, health
from rules.engine import SLOT_KIND_LEVELS


def test_every_quantity_has_a_unit_and_a_range() -> None:
    """A quantity without a range could never be validated, without a unit never shown."""
    assert set(UNITS) == set(RANGES) == set(QUANTITIES)
    assert all(low < high for low, high in RANGES.values())


def test_kind_codes_cover_every_kind() -> None:
    """Rules mask numpy columns by these codes: one per kind, none zero (zero = unknown)."""
    assert set(KIND_CODES) == {k.value for k in DeviceKind}
    assert 0 not in KIND_CODES.values()
    assert len(set(KIND_CODES.values())) == len(KIND_CODES)


def test_rule_families_use_the_contract_slots_and_levels() -> None:
    """The engine's slot levels are the contract's, so the API and dispatch agree with it."""
    assert fire.SLOT == alerts.FIRE_SLOT and fire.KINDS == alerts.FIRE_KINDS
    assert bins.FILL_SLOT == alerts.BIN_FILL_SLOT and bins.FILL_KINDS == alerts.BIN_FILL_KINDS
    assert health.OFFLINE_SLOT == alerts.OFFLINE_SLOT
    for slot, levels in SLOT_KIND_LEVELS.items():
        for kind, level in levels.items():
            assert alerts.ALERT_KINDS[kind].slot == slot
            assert alerts.ALERT_KINDS[kind].level == level


def test_cap_profiles_name_only_contract_kinds() -> None:
    """A CAP profile for a kind that does not exist would never be used."""
    assert set(cap.PROFILES) <= set(alerts.ALERT_KINDS)


def test_topic_shapes_match_their_filters() -> None:
    """Each concrete topic falls under the filter ingest subscribes with."""
    from paho.mqtt.client import topic_matches_sub

    assert topic_matches_sub(topics.DEVICE_UP, topics.device_up("fire-001"))
    assert topic_matches_sub(topics.GATEWAY_UP, topics.gateway_up("gw-1"))
    assert topic_matches_sub(topics.DEVICE_STATUS, topics.device_status("fire-001"))
    assert topic_matches_sub(topics.GATEWAY_STATUS, topics.gateway_status("gw-1"))
    assert topic_matches_sub(topics.ALERTS, topics.alert_topic("fire", "fire-001"))
    assert topic_matches_sub(topics.TTS_UP, "v3/app1@tenant1/devices/dev1/up")
    assert topic_matches_sub(topics.CHIRPSTACK_UP, "application/a1/device/0011/event/up")
