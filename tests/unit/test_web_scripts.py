"""The browser scripts Tidings serves parse as JavaScript (checked by Node; `make test` installs
Debian's nodejs when the machine has none)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.services import unavailable

WEB = Path(__file__).resolve().parents[2] / "src" / "tidings" / "web"
NODE = shutil.which("node")


@pytest.mark.parametrize("script", ["sw.js", "inbox.js"])
def test_the_script_parses(script: str) -> None:
    if NODE is None:
        unavailable("node is not installed (make test installs Debian's nodejs)")
    assert NODE is not None
    done = subprocess.run([NODE, "--check", str(WEB / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_service_worker_shows_pushes_and_opens_their_link_on_click() -> None:
    source = (WEB / "sw.js").read_text()
    assert 'addEventListener("push"' in source and "showNotification" in source
    assert 'addEventListener("notificationclick"' in source and "openWindow" in source
