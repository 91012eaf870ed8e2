"""Durable state: one SQL implementation (SQLAlchemy Core) for SQLite and PostgreSQL."""
