"""/api/v1/ingest/rejected: the messages ingest refused, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from dashboard_api.deps import Services

router = APIRouter(prefix="/ingest", tags=["ingest"])


class RejectedPublic(BaseModel):
    """A rejected message; `raw` is the payload as text (invalid UTF-8 replaced)."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    device_id: str | None
    size: int
    raw: str
    truncated: bool


@router.get("/rejected")
async def list_rejected(
    services: Services,
    reason: str | None = None,
    device_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[RejectedPublic]:
    """Rejected messages, newest first."""
    records = await services.rejected.find(reason=reason, device_id=device_id, limit=limit)
    return [
        RejectedPublic(
            id=r.id,
            received_at=r.received_at,
            topic=r.topic,
            reason=r.reason,
            detail=r.detail,
            device_id=r.device_id,
            size=r.size,
            raw=r.raw.decode("utf-8", errors="replace"),
            truncated=r.truncated,
        )
        for r in records
    ]
