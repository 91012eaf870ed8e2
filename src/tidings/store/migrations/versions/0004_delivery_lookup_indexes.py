"""Indexes for dead letters (by status) and delivery reports (by provider message id)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_status_id", "deliveries", ["status", "id"])
    op.create_index("ix_deliveries_provider_message_id", "deliveries", ["provider_message_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_provider_message_id", table_name="deliveries")
    op.drop_index("ix_deliveries_status_id", table_name="deliveries")
