"""Importing what an optional backend needs, failing with the exact pip line that fixes it."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependencyError(ImportError):
    """A backend was asked for but the extra it needs is not installed."""


def require(module: str, *, extra: str) -> ModuleType:
    """Import `module`; if a third-party package it needs is missing, name the extra to install.

    `module` may be the package itself (`require("asyncpg", extra="postgres")`) or our backend
    module that imports it (`require("tidings.queue.rabbitmq", extra="rabbitmq")`). A missing
    `tidings.*` module is a bug, not an installation problem, so it is re-raised unchanged.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        if missing == "tidings" or missing.startswith("tidings."):
            raise
        raise MissingDependencyError(
            f"{module} needs the package {missing!r}, which is not installed: "
            f"pip install 'tidings[{extra}]'"
        ) from exc
