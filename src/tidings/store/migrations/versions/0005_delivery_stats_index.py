"""Index deliveries by creation time, channel and status, for GET /v1/stats

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_created_at_channel_status",
        "deliveries",
        ["created_at", "channel", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_created_at_channel_status", table_name="deliveries")
