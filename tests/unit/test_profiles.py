"""Device profiles (issue #20): the shipped ones load, a broken file says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.readings import DeviceKind
from devices import profiles
from devices.profiles import SHIPPED, ProfileError, ProfileLibrary, load_profile

SHIPPED_IDS = ["dragino-ldds75", "dragino-lht65", "milesight-em310-udl", "netvox-ra02a", "sigap"]


def test_every_shipped_profile_loads() -> None:
    paths = sorted(SHIPPED.glob("*.toml"))
    assert [p.stem for p in paths] == SHIPPED_IDS
    for path in paths:
        profile = load_profile(path)
        assert profile.id == path.stem and profile.vendor and profile.model
        assert profile.public()["id"] == path.stem
    library = ProfileLibrary.load(SHIPPED)
    assert library.ids() == SHIPPED_IDS and len(library) == 5
    assert profiles.library().ids() == SHIPPED_IDS  # nothing else installed in the tests
    ldds75 = library.get("dragino-ldds75")
    assert ldds75 is not None and ldds75.kind == "bin" and ldds75.maps_codec
    assert ldds75.reporting_interval_s == 1200
    assert ldds75.fields["distance"] == {"field": "distance_mm", "unit": "mm"}
    assert ldds75.status["distance"]["No Sensor"].action == "fault"
    # "sigap" maps nothing: any kind, on Sigap's own topics or LoRaWAN.
    for kind in DeviceKind:
        for lorawan in (False, True):
            assert library.check("sigap", kind.value, lorawan).id == "sigap"


def test_check_says_why_a_profile_does_not_fit() -> None:
    library = ProfileLibrary.load(SHIPPED)
    assert library.check("netvox-ra02a", "fire", True).vendor == "Netvox"
    with pytest.raises(ValueError, match=r"^profile: unknown profile 'nope' \(known: dragino"):
        library.check("nope", "fire", True)
    with pytest.raises(ValueError, match=r"^profile: .* is for fire devices, not bin"):
        library.check("netvox-ra02a", "bin", True)
    with pytest.raises(ValueError, match=r"^profile: .*set network_server"):
        library.check("netvox-ra02a", "fire", False)


BASE = 'vendor = "Acme"\nmodel = "X1"\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BASE + 'colour = "red"\n', "unknown keys ['colour']"),
        (BASE + '[fields]\nt = "celsius"\n', "fields.t: 'celsius' is not a Sigap field"),
        (
            BASE + '[fields]\nd = { field = "distance_mm", unit = "V" }\n',
            "fields.d: unit 'V' does not fit distance_mm (mm, cm, m)",
        ),
        (
            BASE + '[status.state]\nbroken = "panic"\n',
            'status.state.\'broken\' must be "fault", "ignore" or a table of Sigap field = value',
        ),
        (
            BASE + 'kind = "fire"\nmounting_offset_mm = 20\n',
            "mounting_offset_mm applies only to bin sensors",
        ),
        ('model = "X1"\n', "vendor must be a non-empty string"),
        (BASE + "reporting_interval_s = 0\n", "reporting_interval_s must be within"),
        (BASE + 'kind = "toaster"\n', "kind must be one of"),
        (BASE + "[fields\n", "cannot read it"),
    ],
)
def test_a_broken_profile_names_its_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "acme-x1.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"profile {path}: ")
    assert problem in str(caught.value)
    # A library with it refuses to load, rather than leave a silent gap.
    with pytest.raises(ProfileError) as in_library:
        ProfileLibrary.load(SHIPPED, tmp_path)
    assert str(in_library.value) == str(caught.value)


def test_a_profile_file_name_must_be_an_id(tmp_path: Path) -> None:
    path = tmp_path / "Acme X1.toml"
    path.write_text(BASE, encoding="utf-8")
    with pytest.raises(ProfileError, match="lowercase letters, digits and dashes"):
        load_profile(path)
    with pytest.raises(ProfileError, match="does not exist"):
        ProfileLibrary.load(tmp_path / "nowhere")


def test_an_operators_profile_replaces_a_shipped_one_of_the_same_id(tmp_path: Path) -> None:
    (tmp_path / "dragino-ldds75.toml").write_text(
        'vendor = "Dragino"\nmodel = "LDDS75 (firmware 1.2)"\nkind = "bin"\n'
        "reporting_interval_s = 600\nmounting_offset_mm = 25\n"
        '[fields]\ndist = { field = "distance_mm", unit = "cm" }\n',
        encoding="utf-8",
    )
    (tmp_path / "acme-x1.toml").write_text(BASE, encoding="utf-8")
    library = ProfileLibrary.load(SHIPPED, tmp_path)
    assert library.ids() == sorted([*SHIPPED_IDS, "acme-x1"])
    ldds75 = library.get("dragino-ldds75")
    assert ldds75 is not None
    assert ldds75.model == "LDDS75 (firmware 1.2)" and ldds75.reporting_interval_s == 600
    assert ldds75.mounting_offset_mm == 25
    assert dict(ldds75.fields) == {"dist": {"field": "distance_mm", "unit": "cm"}}
    assert ldds75.status == {}  # the whole file replaced, nothing merged from the shipped one
    acme = library.get("acme-x1")
    assert acme is not None and acme.kind is None and not acme.maps_codec
