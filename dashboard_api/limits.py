"""Request size limits: a body cap on every route, and 4xx answers that echo little input."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024
# JSON bodies are a device, a station or a route plan with a distance matrix: kilobytes to
# a few hundred. 1 MiB leaves room and keeps a hostile body from holding the event loop
# in the JSON parser and in validation (20 MB held it for seconds, issue #22).
DEFAULT_MAX_BODY_BYTES = MIB
# A registry export for a regency is a few hundred kB; this leaves room without letting a
# stray upload hold the worker.
DEFAULT_MAX_IMPORT_BYTES = 5 * MIB
IMPORT_PATH = "/api/v1/devices/import"

# How much of a rejected value a 4xx answer repeats: enough to recognise it.
ECHO_CHARS = 200
# Any other text in a 4xx answer (messages that quote a value) is cut here.
MESSAGE_CHARS = 1000
# Validation errors listed in one 422; a body with thousands of bad keys gets the first.
MAX_LISTED_ERRORS = 50


@dataclass(frozen=True)
class BodyLimits:
    """Largest request body accepted, in bytes: the CSV import's, and every other route's."""

    default: int = DEFAULT_MAX_BODY_BYTES
    imports: int = DEFAULT_MAX_IMPORT_BYTES

    def for_path(self, path: str) -> int:
        """The limit for a request to this path."""
        return self.imports if path == IMPORT_PATH else self.default

    def refusal(self, path: str) -> str:
        """The 413's message for this path: the limit, and what to do about it."""
        limit = self.for_path(path)
        if path == IMPORT_PATH:
            return (
                f"the CSV file is over {_size(limit)}, the limit of one import "
                "(SIGAP_API_MAX_IMPORT_BYTES); split it into smaller files"
            )
        return (
            f"the request body is over {_size(limit)}, the limit of this API "
            "(SIGAP_API_MAX_BODY_BYTES)"
        )


def _size(n: int) -> str:
    return f"{n} bytes ({n / MIB:.3g} MiB)" if n >= MIB else f"{n} bytes"


# On a 413 the rest of the body stays unread: the connection cannot carry another request.
_CLOSE = {"Connection": "close"}


class BodyTooLargeError(HTTPException):
    """A request body past its limit, found while it streamed in."""


class BodySizeLimit:
    """ASGI middleware: 413 for a body over its limit, before anything parses it.

    A declared Content-Length over the limit is refused without reading a byte; a body
    without one (chunked) or lying about it is counted as it arrives, and the read that
    crosses the limit raises, so no handler ever holds more than the limit.
    """

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a counting `receive`, or answer 413."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limits.for_path(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(path, scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException: FastAPI re-raises it from body parsing as it is,
                    # and its exception middleware answers with the message.
                    raise BodyTooLargeError(413, self.limits.refusal(path), _CLOSE)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLargeError:
            if started:
                raise
            # Raised where no exception handler runs (outside a route).
            await self._refuse(path, scope, receive, send)

    async def _refuse(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": self.limits.refusal(path)}, status_code=413, headers=_CLOSE
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the server refuses it first; otherwise the counting applies


def clip(value: Any, limit: int = ECHO_CHARS) -> Any:
    """`value`, or a prefix of its text when longer than `limit` characters."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, str):
        return _text(value, limit)
    if isinstance(value, bytes | bytearray):
        return _text(bytes(value[: limit + 1]).decode("utf-8", "replace"), limit)
    if isinstance(value, int):
        # Python refuses to print ints of more than 4300 digits; such a one is only named.
        text = str(value) if value.bit_length() < 14_000 else "a very large integer"
        return value if len(text) <= limit else _text(text, limit)
    # Containers: JSON text, made lazily (the pure-Python encoder yields piece by piece),
    # so a 100,000-item list costs only the pieces up to the limit.
    encoder = json.JSONEncoder(default=repr, check_circular=False, allow_nan=True)
    pieces: list[str] = []
    length = 0
    for piece in encoder.iterencode(value):
        pieces.append(piece)
        length += len(piece)
        if length > limit:
            return _text("".join(pieces), limit)
    return value


def _text(text: str, limit: int) -> str:
    if len(text) > limit:
        text = text[:limit] + "..."
    # A lone surrogate cannot be encoded in the UTF-8 response: escape it.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _clip_error(error: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(error)
    if "input" in out:
        out["input"] = clip(out["input"])
    if "msg" in out:
        out["msg"] = clip(str(out["msg"]), MESSAGE_CHARS)
    # A key of the body is part of the location: a megabyte-long key would come back.
    out["loc"] = [clip(part, ECHO_CHARS) for part in out.get("loc", ())]
    ctx = out.get("ctx")
    if isinstance(ctx, Mapping):
        out["ctx"] = {
            key: clip(v if isinstance(v, str | int | float | bool) or v is None else str(v))
            for key, v in ctx.items()
        }
    return out


def short_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors for a 422: the first MAX_LISTED_ERRORS, each value cut short."""
    listed = [_clip_error(e) for e in errors[:MAX_LISTED_ERRORS] if isinstance(e, Mapping)]
    if len(errors) > MAX_LISTED_ERRORS:
        more = len(errors) - MAX_LISTED_ERRORS
        listed.append(
            {
                "type": "too_many_errors",
                "loc": [],
                "msg": f"{more} more errors are not listed",
                "input": None,
            }
        )
    return listed


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, with each `input` cut to a prefix and the list of errors capped."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        status_code=422, content={"detail": jsonable_encoder(short_errors(exc.errors()))}
    )


def _clip_detail(detail: Any, depth: int = 0) -> Any:
    if isinstance(detail, str):
        return clip(detail, MESSAGE_CHARS)
    if depth > 8:
        return clip(detail, MESSAGE_CHARS)
    if isinstance(detail, Mapping):
        return {key: _clip_detail(value, depth + 1) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return [_clip_detail(value, depth + 1) for value in detail]
    return detail


async def short_http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's HTTPException answer, with long message text cut (it may quote input)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code < 500 and exc.detail is not None:
        exc = HTTPException(exc.status_code, _clip_detail(exc.detail), exc.headers)
    return await http_exception_handler(request, exc)
