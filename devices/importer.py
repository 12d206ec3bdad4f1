"""Bulk registration from CSV: every row valid and registered in one transaction, or none."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from devices.registry import DeviceRegistry, RegistryError, gateway_problem
from devices.schemas import DeviceCreate, ImportReport, ImportRowError, validation_messages

# Columns holding JSON objects (thresholds, calibration offsets, LoRaWAN field maps).
JSON_COLUMNS = frozenset({"thresholds", "sensor_offsets", "field_map"})
REQUIRED_COLUMNS = ("id", "kind", "lat", "lon")
MAX_ROWS = 10_000


def _header_errors(header: list[str]) -> list[ImportRowError]:
    known = DeviceCreate.model_fields
    errors = [
        ImportRowError(
            row=1,
            field=name or None,
            message=f"unknown column {name!r}; columns are: {', '.join(known)}",
        )
        for name in header
        if name not in known
    ]
    errors += [
        ImportRowError(row=1, field=name, message=f"column {name!r} appears more than once")
        for name in sorted({n for n in header if header.count(n) > 1})
    ]
    errors += [
        ImportRowError(row=1, field=name, message=f"required column {name!r} is missing")
        for name in REQUIRED_COLUMNS
        if name not in header
    ]
    return errors


def _delimiter(first_line: str) -> str:
    # Spreadsheets in an Indonesian locale save CSV with semicolons (the comma is the decimal
    # separator there); the header has no commas in that case.
    return ";" if ";" in first_line and "," not in first_line else ","


def parse_rows(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[ImportRowError]]:
    """CSV text -> (row number, field values) per data row, and errors found on the way."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return [], [ImportRowError(row=1, field=None, message="the file has no header row")]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(lines[0]))
    header = [name.strip() for name in next(reader)]
    errors = _header_errors(header)
    if errors:
        return [], errors
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, common at the end of exported files
        if len(rows) >= MAX_ROWS:
            errors.append(
                ImportRowError(row=number, field=None, message=f"too many rows (limit {MAX_ROWS})")
            )
            break
        if len(cells) != len(header):
            errors.append(
                ImportRowError(
                    row=number,
                    field=None,
                    message=f"{len(cells)} cells, but the header has {len(header)} columns",
                )
            )
            continue
        values: dict[str, Any] = {}
        for name, cell in zip(header, cells, strict=True):
            cell = cell.strip()
            if not cell:
                continue  # empty cell = not given (the field's default)
            if name in JSON_COLUMNS:
                try:
                    values[name] = json.loads(cell)
                except ValueError as exc:
                    errors.append(
                        ImportRowError(row=number, field=name, message=f"not valid JSON: {exc}")
                    )
                continue
            values[name] = cell
        rows.append((number, values))
    return rows, errors


def _validate(
    rows: list[tuple[int, dict[str, Any]]],
    errors: list[ImportRowError],
    check: Callable[[DeviceCreate], None],
) -> list[tuple[int, DeviceCreate]]:
    devices: list[tuple[int, DeviceCreate]] = []
    first_row: dict[object, int] = {}
    for number, values in rows:
        try:
            device = DeviceCreate.model_validate(values)
        except ValidationError as exc:
            errors += [
                ImportRowError(row=number, field=field, message=message)
                for field, message in validation_messages(exc)
            ]
            continue
        try:
            check(device)
        except ValueError as exc:
            field = "rule_class" if "rule class" in str(exc) else "thresholds"
            errors.append(ImportRowError(row=number, field=field, message=str(exc)))
            continue
        clash = False
        keys: list[tuple[str, object]] = [("id", device.id)]
        if device.network_server and device.ns_device_id:
            keys.append(("ns_device_id", (device.network_server.value, device.ns_device_id)))
        for field, key in keys:
            if (field, key) in first_row:
                errors.append(
                    ImportRowError(
                        row=number,
                        field=field,
                        message=f"{field} {getattr(device, field)!r} is repeated "
                        f"(first on row {first_row[(field, key)]})",
                    )
                )
                clash = True
            else:
                first_row[(field, key)] = number
        if not clash:
            devices.append((number, device))
    return devices


async def _check_registry(
    registry: DeviceRegistry,
    devices: list[tuple[int, DeviceCreate]],
    errors: list[ImportRowError],
) -> None:
    # One query per kind of check, not one per row: imports have thousands of rows.
    taken = {d.id for d in await registry.get_many([d.id for _, d in devices])}
    ns_keys = [
        (d.network_server.value, d.ns_device_id)
        for _, d in devices
        if d.network_server and d.ns_device_id
    ]
    owners = await registry.ns_owners(ns_keys)
    gateways = await registry.gateways.get_many({d.gateway_id for _, d in devices if d.gateway_id})
    for number, device in devices:
        if device.id in taken:
            errors.append(
                ImportRowError(
                    row=number, field="id", message=f"device {device.id!r} is already registered"
                )
            )
        if device.network_server and device.ns_device_id:
            owner = owners.get((device.network_server.value, device.ns_device_id))
            if owner is not None:
                errors.append(
                    ImportRowError(
                        row=number,
                        field="ns_device_id",
                        message=f"ns_device_id {device.ns_device_id!r} on "
                        f"{device.network_server.value} is already registered as device "
                        f"{owner!r}",
                    )
                )
        problem = gateway_problem(device, gateways.get(device.gateway_id or ""))
        if problem:
            errors.append(
                ImportRowError(
                    row=number, field="gateway_id", message=problem.removeprefix("gateway_id: ")
                )
            )


async def import_csv(
    registry: DeviceRegistry,
    data: bytes,
    check: Callable[[DeviceCreate], None] = lambda _device: None,
) -> ImportReport:
    """Validate every row, then register all devices in one transaction, or none of them.

    `check` is the runtime's extra per-device check (rule classes); it raises ValueError.
    A report with errors means nothing was registered.
    """
    try:
        text = data.decode("utf-8-sig")  # Excel puts a byte-order mark first
    except UnicodeDecodeError as exc:
        error = ImportRowError(row=1, field=None, message=f"the file is not UTF-8 text: {exc}")
        return ImportReport(rows=0, created=0, errors=[error])
    rows, errors = parse_rows(text)
    devices = _validate(rows, errors, check)
    if devices:
        await _check_registry(registry, devices, errors)
    if not rows and not errors:
        errors.append(ImportRowError(row=2, field=None, message="the file has no data rows"))
    if errors:
        errors.sort(key=lambda e: e.row)
        return ImportReport(rows=len(rows), created=0, errors=errors)
    try:
        created = await registry.create_many([d for _, d in devices])
    except RegistryError as exc:
        # A concurrent registration took an id after our checks; nothing was written.
        error = ImportRowError(row=1, field=None, message=f"{exc}; nothing was imported")
        return ImportReport(rows=len(rows), created=0, errors=[error])
    return ImportReport(rows=len(rows), created=len(created))
