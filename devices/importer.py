"""Bulk registration from CSV: every row valid and registered in one transaction, or none."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from devices.registry import DeviceRegistry, RegistryError, gateway_problem
from devices.schemas import DeviceCreate, ImportReport, ImportRowError, validation_messages

# Columns holding JSON objects (thresholds, calibration offsets, LoRaWAN field maps).
JSON_COLUMNS = frozenset({"thresholds", "sensor_offsets", "field_map"})
REQUIRED_COLUMNS = ("id", "kind", "lat", "lon")
MAX_ROWS = 10_000
# DeviceCreate has about 25 fields; a header with more than this is not a device file,
# and is refused before the csv module splits it (issue #22: 300k columns, 2.3 MB).
MAX_COLUMNS = 64
# The longest real cell is a JSON field map or thresholds object of a few hundred
# characters; the csv module itself fails past 131,072 (a 500 before issue #22).
MAX_CELL_CHARS = 4096
# Errors listed in one report (a file of 10,000 bad rows would list 10,000s): the first
# ones, in row order, and how many more there are.
MAX_LISTED_ERRORS = 100
# How much of a column name an error message repeats.
_NAME_CHARS = 60
# Parsing and validating run in these threads, never on the event loop: a 5 MB file is a
# second of CPU. Two at a time bounds the CPU and memory that concurrent imports take.
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sigap-csv-import")
_FIRST_LINE = re.compile(r"[^\r\n]*")
# Rows between two hand-overs of the GIL to the event loop (see _let_the_loop_run).
_YIELD_EVERY = 50


def _let_the_loop_run() -> None:
    # A worker thread still holds the GIL while it validates: the event loop would wait
    # the switch interval (5 ms) for each step of each request it serves, and /healthz
    # took 50-300 ms. Sleeping 0 releases the GIL to a waiting thread at once.
    time.sleep(0)


def _name(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[:_NAME_CHARS] + "..."


def _header_errors(header: list[str]) -> list[ImportRowError]:
    known = DeviceCreate.model_fields
    errors = [
        ImportRowError(
            row=1,
            field=_name(name) or None,
            message=f"unknown column {_name(name)!r}; columns are: {', '.join(known)}",
        )
        for name in header
        if name not in known
    ]
    # Counted once: header.count() per name made a wide header cost its square (#22).
    counts = Counter(header)
    errors += [
        ImportRowError(
            row=1, field=_name(name), message=f"column {_name(name)!r} appears more than once"
        )
        for name in sorted(n for n, count in counts.items() if count > 1)
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


def _csv_error(row: int, exc: csv.Error) -> ImportRowError:
    if "field larger than field limit" in str(exc):
        message = f"a cell is over {MAX_CELL_CHARS} characters"
    else:
        message = f"not readable as CSV: {exc}"
    return ImportRowError(row=row, field=None, message=message)


def _long_cell(row: int, header: list[str], cells: list[str]) -> ImportRowError | None:
    for name, cell in zip(header, cells, strict=False):
        if len(cell) > MAX_CELL_CHARS:
            return ImportRowError(
                row=row,
                field=_name(name) or None,
                message=f"a cell is over {MAX_CELL_CHARS} characters ({len(cell)})",
            )
    return None


def parse_rows(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[ImportRowError]]:
    """CSV text -> (row number, field values) per data row, and errors found on the way."""
    match = _FIRST_LINE.match(text)
    first_line = match.group() if match else ""
    if not first_line.strip():
        return [], [ImportRowError(row=1, field=None, message="the file has no header row")]
    delimiter = _delimiter(first_line)
    # Column names hold no delimiter, so this counts the header's columns without parsing
    # it: a header of 100,000s of names is refused in one pass over its line.
    columns = first_line.count(delimiter) + 1
    if columns > MAX_COLUMNS:
        message = (
            f"the header has {columns} columns; at most {MAX_COLUMNS}, of: "
            f"{', '.join(DeviceCreate.model_fields)}"
        )
        return [], [ImportRowError(row=1, field=None, message=message)]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        return [], [_csv_error(1, exc)]
    long_name = _long_cell(1, header, header)
    if long_name:
        return [], [long_name]
    errors = _header_errors(header)
    if errors:
        return [], errors
    rows: list[tuple[int, dict[str, Any]]] = []
    number = 1
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader cannot find the next row after this: report it and stop.
            errors.append(_csv_error(number, exc))
            break
        if number % _YIELD_EVERY == 0:
            _let_the_loop_run()
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
        long_cell = _long_cell(number, header, cells)
        if long_cell:
            errors.append(long_cell)
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
        if number % _YIELD_EVERY == 0:
            _let_the_loop_run()
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


def read_csv(
    data: bytes, check: Callable[[DeviceCreate], None]
) -> tuple[int, list[tuple[int, DeviceCreate]], list[ImportRowError]]:
    """Decode, parse and validate a CSV file: (data rows, valid devices, errors)."""
    try:
        text = data.decode("utf-8-sig")  # Excel puts a byte-order mark first
    except UnicodeDecodeError as exc:
        error = ImportRowError(row=1, field=None, message=f"the file is not UTF-8 text: {exc}")
        return 0, [], [error]
    rows, errors = parse_rows(text)
    devices = _validate(rows, errors, check)
    if not rows and not errors:
        errors.append(ImportRowError(row=2, field=None, message="the file has no data rows"))
    return len(rows), devices, errors


def _listed(errors: list[ImportRowError]) -> list[ImportRowError]:
    errors.sort(key=lambda e: e.row)
    if len(errors) <= MAX_LISTED_ERRORS:
        return errors
    first_unlisted = errors[MAX_LISTED_ERRORS]
    more = ImportRowError(
        row=first_unlisted.row,
        field=None,
        message=f"{len(errors) - MAX_LISTED_ERRORS} more errors from this row on are not "
        "listed; fix the ones above and import again",
    )
    return [*errors[:MAX_LISTED_ERRORS], more]


async def import_csv(
    registry: DeviceRegistry,
    data: bytes,
    check: Callable[[DeviceCreate], None] = lambda _device: None,
) -> ImportReport:
    """Validate every row, then register all devices in one transaction, or none of them.

    `check` is the runtime's extra per-device check (rule classes); it raises ValueError
    and is called from a worker thread. A report with errors means nothing was registered.
    """
    loop = asyncio.get_running_loop()
    rows, devices, errors = await loop.run_in_executor(_WORKERS, read_csv, data, check)
    if devices:
        await _check_registry(registry, devices, errors)
    if errors:
        return ImportReport(rows=rows, created=0, errors=_listed(errors))
    try:
        created = await registry.create_many([d for _, d in devices])
    except RegistryError as exc:
        # A concurrent registration took an id after our checks; nothing was written.
        error = ImportRowError(row=1, field=None, message=f"{exc}; nothing was imported")
        return ImportReport(rows=rows, created=0, errors=[error])
    return ImportReport(rows=rows, created=len(created))
