"""Apply the Alembic migrations shipped in this package to a database URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["tidings_url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the schema to the newest version (blocking; run it before the event loop starts,
    or in a thread)."""
    command.upgrade(alembic_config(url), "head")
