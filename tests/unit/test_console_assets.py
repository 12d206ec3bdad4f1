"""The console's files: vendored assets match their checksums, nothing loads from the
internet, and every message the scripts name is in both catalogues."""

from __future__ import annotations

import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

from contract.alerts import ALERT_KINDS
from contract.ispu import CATEGORIES
from dashboard_api.console import vendor
from dashboard_api.routers.haze import HazeRegion

STATIC = Path(vendor.__file__).resolve().parent / "static"
OWN = [
    p
    for p in STATIC.rglob("*")
    if p.is_file() and "vendor" not in p.relative_to(STATIC).parts and p.suffix != ".png"
]


def test_vendored_files_match_their_checksums() -> None:
    """What is committed under static/vendor/ is exactly what vendor.py fetched and checked."""
    sums = vendor.read_sums()
    on_disk = {
        str(p.relative_to(vendor.VENDOR)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in vendor.VENDOR.rglob("*")
        if p.is_file() and p != vendor.SUMS
    }
    assert on_disk == sums


def test_every_asset_is_pinned_with_its_licence() -> None:
    """Each pinned package ships its licence file and has every listed file vendored."""
    sums = vendor.read_sums()
    for asset in vendor.assets():
        assert asset.integrity.startswith("sha512-")
        assert "LICENSE" in asset.files, asset.package
        assert {f"{asset.package}/{name}" for name in asset.files} <= set(sums)


def test_sri_matches_npm_format() -> None:
    """The integrity string is npm's: sha512 of the tarball, base64."""
    assert vendor.sri(b"") == (
        "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )


def test_own_files_load_nothing_from_the_internet() -> None:
    """A fire post may have no connection: no absolute URL in the console's own files."""
    url = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}")
    # An XML namespace names a URI; nothing is fetched from it.
    namespace = re.compile(r'xmlns(:\w+)?="[^"]*"')
    offenders = [
        str(p.relative_to(STATIC))
        for p in OWN
        if url.search(namespace.sub("", p.read_text(errors="replace")))
    ]
    assert offenders == []


def test_catalogues_have_the_same_keys_and_no_empty_message() -> None:
    """Every message exists in Indonesian and English."""
    ids = json.loads((STATIC / "i18n" / "id.json").read_text())
    ens = json.loads((STATIC / "i18n" / "en.json").read_text())
    assert set(ids) == set(ens)
    assert all(isinstance(v, str) and v.strip() for v in [*ids.values(), *ens.values()])


def test_every_message_key_named_in_the_scripts_exists() -> None:
    """A literal key in the scripts or the page that is not in the catalogue would show raw."""
    ids = json.loads((STATIC / "i18n" / "id.json").read_text())
    prefixes = {key.split(".")[0] for key in ids}
    literal = re.compile(r"""["']([a-z]+\.[a-z_.]+)["']""")
    named = {
        key
        for p in OWN
        if p.suffix in (".js", ".html")
        for key in literal.findall(p.read_text())
        if key.split(".")[0] in prefixes and not key.endswith((".js", ".css", ".json", ".svg"))
    }
    assert len(named) > 20, f"the scan found too few message keys: {sorted(named)}"
    assert sorted(named - set(ids)) == []


def catalogues() -> dict[str, dict[str, str]]:
    """Both message catalogues, by language."""
    return {
        lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text()) for lang in ("id", "en")
    }


def test_every_alert_kind_has_its_words_wherever_the_console_names_kinds() -> None:
    """An alert kind the engine raises (haze.regional too) never shows as a raw key: the
    dispatch, map and incident views name it by kind.<kind>, the device page by
    tech.alert.<kind> (for the kinds technician.js lists)."""
    technician = (STATIC / "js" / "technician.js").read_text()
    listed = set(re.findall(r'"([a-z_]+\.[a-z_]+)"', technician.split("const ALERT_KINDS", 1)[1]))
    for lang, messages in catalogues().items():
        missing = [
            f"{prefix}{kind}"
            for kind in ALERT_KINDS
            for prefix in ("kind.", "tech.alert.")
            if f"{prefix}{kind}" not in messages
        ]
        assert missing == [], f"{lang}.json"
    assert set(ALERT_KINDS) <= listed, set(ALERT_KINDS) - listed


def test_ispu_categories_have_the_regulation_s_names_and_colours() -> None:
    """Each ISPU category (contract/ispu.py) is named as the regulation names it, and drawn
    in its colour by the haze strip (console.css) and the map (js/haze.js)."""
    messages = catalogues()
    css = (STATIC / "css" / "console.css").read_text().lower()
    script = (STATIC / "js" / "haze.js").read_text().lower()
    for category in CATEGORIES:
        ident = category.id.value
        assert messages["id"][f"ispu.{ident}"] == category.name_id
        assert messages["en"][f"ispu.{ident}"] == category.name_en
        colour = category.colour_hex.lower()
        assert re.search(rf"\.ispu-{ident} \{{ --ispu: {colour};", css), (ident, colour)
        assert re.search(rf'\{{ id: "{ident}", upto: \w+, fill: "{colour}"', script), ident


def literal_values(annotation: Any) -> set[str]:
    """The strings of a Literal[...] annotation, through `| None`."""
    if typing.get_origin(annotation) is typing.Literal:
        return {str(value) for value in typing.get_args(annotation)}
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return set().union(*(literal_values(arg) for arg in typing.get_args(annotation)))
    return set()


def test_every_haze_trend_and_source_the_api_gives_has_its_words() -> None:
    """GET /api/v1/haze's trend and pm25_source values are worded on the haze strip."""
    trends = literal_values(HazeRegion.model_fields["trend"].annotation)
    sources = literal_values(HazeRegion.model_fields["pm25_source"].annotation)
    assert trends == {"rising", "steady", "falling"} and sources == {"stations", "detectors"}
    for lang, messages in catalogues().items():
        missing = [
            key
            for key in [
                *(f"dispatch.haze.trend.{t}" for t in trends),
                *(f"dispatch.haze.source.{s}" for s in sources),
            ]
            if key not in messages
        ]
        assert missing == [], f"{lang}.json"


async def test_api_docs_load_only_sigap_s_own_files() -> None:
    """/docs is Swagger UI from the vendored copy: every script and style it names is served."""
    import httpx

    from dashboard_api.app import create_app

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sigap.test") as client:
        page = (await client.get("/docs")).text
        assert "/openapi.json" in page
        sources = re.findall(r"""(?:src|href)=["']?([^"' >]+)""", page)
        assets = [s for s in sources if s.startswith("/console/static/")]
        assert len(assets) >= 3
        assert [s for s in sources if "//" in s] == []
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200, asset
        assert (await client.get("/redoc")).status_code == 404
