"""The console's files: vendored assets match their checksums, nothing loads from the
internet, and every message the scripts name is in both catalogues."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from dashboard_api.console import vendor

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
