"""webhook last_error without response bodies

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_outbox = sa.table(
    "webhook_outbox",
    sa.column("id", sa.Integer),
    sa.column("last_error", sa.String),
)


def upgrade() -> None:
    """Apply this revision."""
    # Failed deliveries used to keep the receiver's answer ("HTTP 500: <body>"), readable
    # by every role (issue #22): keep the status alone. Python, not SQL string functions,
    # so that SQLite and PostgreSQL do the same.
    conn = op.get_bind()
    found = conn.execute(
        sa.select(_outbox.c.id, _outbox.c.last_error).where(_outbox.c.last_error.like("HTTP %:%"))
    ).all()
    for row_id, last_error in found:
        conn.execute(
            sa.update(_outbox)
            .where(_outbox.c.id == row_id)
            .values(last_error=last_error.split(":", 1)[0])
        )


def downgrade() -> None:
    """Undo this revision: nothing to undo, the bodies are gone for good."""
