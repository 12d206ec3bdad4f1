"""Request input that parses but that nothing downstream can hold: refused with a 422."""

from __future__ import annotations

import math
import re
from email.message import Message
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError

# Far beyond any real page (a regency has thousands of devices, alerts run to millions),
# and far below SQLite's and PostgreSQL's 64-bit integers, which overflow into a 500.
MAX_OFFSET = 10**9
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]
# Row ids are 64-bit integers in SQL counting from 1; no other can exist, and one beyond
# 64 bits either way (-2**63 - 1 too) would overflow there.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]

# JSON's \ud800..\udfff escapes decode to lone surrogates when unpaired: no UTF-8 encoder,
# SQL driver or JSON response can hold them.
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_REPORTED = 20
NOT_FINITE = (
    "not a finite number: JSON has no NaN or Infinity, and a number beyond about 1.8e308 "
    "overflows to infinity"
)
LONE_SURROGATE = (
    "holds a lone UTF-16 surrogate (an unpaired \\ud800..\\udfff escape), which is not a "
    "character: send valid Unicode text"
)


def _is_json(content_type: str | None) -> bool:
    # The same test FastAPI applies before it parses a body as JSON.
    if not content_type:
        return True
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _printable(key: str) -> str:
    # Error locations are echoed in the response: escape what UTF-8 cannot carry.
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def unusable_json(value: Any, loc: tuple[str | int, ...] = ("body",)) -> list[dict[str, Any]]:
    """FastAPI-style errors for each non-finite number and lone surrogate in parsed JSON."""
    errors: list[dict[str, Any]] = []
    # Iterative: a body nested as deep as the parser allows must not overflow the stack here.
    stack: list[tuple[tuple[str | int, ...], Any]] = [(loc, value)]
    while stack and len(errors) < _MAX_REPORTED:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            errors.append(_error(where, "finite_number", NOT_FINITE))
        elif isinstance(item, str) and _SURROGATE.search(item):
            errors.append(_error(where, "string_unicode", f"the text {LONE_SURROGATE}"))
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if _SURROGATE.search(key):
                    errors.append(_error(where, "string_unicode", f"a key {LONE_SURROGATE}"))
                stack.append(((*where, _printable(key)), child))
        elif isinstance(item, list):
            stack.extend(((*where, i), child) for i, child in reversed(list(enumerate(item))))
    return errors[:_MAX_REPORTED]


def _error(loc: tuple[str | int, ...], kind: str, message: str) -> dict[str, Any]:
    # No `input`: the offending value is exactly what a JSON response cannot encode.
    return {"type": kind, "loc": loc, "msg": message, "input": None}


async def refuse_unusable_json(request: Request) -> None:
    """422 when a JSON body holds NaN, an infinity (1e400 too) or a lone surrogate.

    Python's JSON parser accepts all three; pydantic keeps them, and then the database,
    the rule engine or the response encoder fails with a 500.
    """
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None:
        return  # no JSON body here (the CSV import reads its own body)
    if not _is_json(request.headers.get("content-type")) or not await request.body():
        return
    try:
        body = await request.json()  # parsed once already, by FastAPI: Starlette caches it
    except ValueError:
        return  # not JSON after all: FastAPI's own validation answers
    errors = unusable_json(body)
    if errors:
        raise RequestValidationError(errors)


# For an APIRouter's `dependencies=`: every route with a JSON body.
JSON_CHECKED = [Depends(refuse_unusable_json)]
