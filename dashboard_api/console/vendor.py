"""Fetch the pinned third-party assets of vendor.toml into static/vendor/, checksums checked.

Run `.venv/bin/python -m dashboard_api.console.vendor` after changing vendor.toml; it needs
`npm` (only then: the vendored files are committed and served as they are).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "vendor.toml"
VENDOR = HERE / "static" / "vendor"
SUMS = VENDOR / "SHA256SUMS"


@dataclass(frozen=True)
class Asset:
    """One pinned npm package and the files Sigap serves from it."""

    package: str
    version: str
    integrity: str
    licence: str
    files: tuple[str, ...]
    why: str


def assets(manifest: Path = MANIFEST) -> list[Asset]:
    """The assets vendor.toml pins."""
    data = tomllib.loads(manifest.read_text())
    return [
        Asset(
            package=a["package"],
            version=a["version"],
            integrity=a["integrity"],
            licence=a["licence"],
            files=tuple(a["files"]),
            why=a["why"],
        )
        for a in data["asset"]
    ]


def sri(data: bytes) -> str:
    """A Subresource Integrity string (as npm records it) for these bytes."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(asset: Asset) -> bytes:
    """The package tarball through the npm client, refused unless its sha512 matches."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "npm",
                "pack",
                "--json",
                "--pack-destination",
                tmp,
                f"{asset.package}@{asset.version}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        name = json.loads(out.stdout)[0]["filename"]
        data: bytes = (Path(tmp) / name).read_bytes()
    if sri(data) != asset.integrity:
        raise SystemExit(
            f"{asset.package}@{asset.version}: tarball integrity {sri(data)} "
            f"is not the pinned {asset.integrity}"
        )
    return data


def extract(asset: Asset, tarball: bytes) -> dict[str, str]:
    """Write the asset's files under static/vendor/<package>/; their sha256 by path."""
    target = VENDOR / asset.package
    target.mkdir(parents=True, exist_ok=True)
    sums: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for name in asset.files:
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise SystemExit(f"{asset.package}: {name} is not in the package")
            data = member.read()
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(data)
            sums[f"{asset.package}/{name}"] = hashlib.sha256(data).hexdigest()
    return sums


def read_sums(path: Path = SUMS) -> dict[str, str]:
    """The recorded sha256 of each vendored file (path relative to static/vendor/)."""
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name] = digest
    return sums


def main() -> int:
    """Fetch every asset, extract it and record the checksums."""
    sums: dict[str, str] = {}
    for asset in assets():
        sums.update(extract(asset, fetch(asset)))
        print(f"{asset.package}@{asset.version}: {len(asset.files)} files")
    SUMS.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
