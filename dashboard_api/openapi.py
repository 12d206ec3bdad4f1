"""The OpenAPI document's refusals: every 4xx an operation can answer, with its body.

FastAPI documents a route's success and its 422 only. The refusals that come from the
API's own machinery are the same everywhere and follow from an operation's shape, so they
are added here rather than repeated on each route: 401 (no valid token) on /api/v1, 403
on its writes (a role check, or a console write without its CSRF token), 404 on a path
naming a thing, 400 (a body that does not decode) and 413 (a body over its limit). A
route declares its other answers (409, 503, a 403 on a read) in its decorator's
`responses=`; a refusal declared without a body gets `Refusal`, the `{"detail": "..."}`
an HTTPException answers with. The fuzz tests (tests/unit/test_api_fuzz.py) hold every
response to this document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dashboard_api.auth import SAFE_METHODS

REFUSAL = "Refusal"
_REFUSAL_SCHEMA: dict[str, Any] = {
    "title": REFUSAL,
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "Detail", "description": "What is wrong."}
    },
}
_API = "/api/v1/"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def document_refusals(schema: dict[str, Any]) -> dict[str, Any]:
    """Add each operation's refusals to FastAPI's document (in place; idempotent)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[REFUSAL] = _REFUSAL_SCHEMA
    invalid = components.get("HTTPValidationError")
    if invalid is not None and "anyOf" not in invalid["properties"]["detail"]:
        # A check after validation (an unknown reference, a rule across fields) answers
        # 422 with a sentence rather than FastAPI's list of errors.
        listed = dict(invalid["properties"]["detail"])
        title = listed.pop("title", "Detail")
        invalid["properties"]["detail"] = {"title": title, "anyOf": [listed, {"type": "string"}]}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in _refusals(path, method, operation):
                responses.setdefault(str(status), {"description": description})
            for status, response in responses.items():
                if status[0] in "45" and not _has_schema(response):
                    ref = {"$ref": f"#/components/schemas/{REFUSAL}"}
                    response["content"] = {"application/json": {"schema": ref}}
    return schema


def _refusals(path: str, method: str, operation: dict[str, Any]) -> Iterator[tuple[int, str]]:
    if operation.get("requestBody") is not None:
        yield 400, "The body could not be read (e.g. JSON text that is not UTF-8)."
        yield 413, "The body is over the size limit of this route."
    if not path.startswith(_API):
        return
    yield 401, "No bearer token or console session, or not a valid one."
    if method.upper() not in SAFE_METHODS:
        yield 403, "The token's role may not do this, or a console write lacks its CSRF token."
    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        yield 404, "Nothing by an id in the path (e.g. an unknown device)."


def _has_schema(response: dict[str, Any]) -> bool:
    content = response.get("content")
    if not content:
        return False
    return all(media.get("schema") for media in content.values())
