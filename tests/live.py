"""Run the real service as a subprocess on a free port, as a user would (e2e, browser, bench)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TIDINGS = str(Path(sys.executable).with_name("tidings"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(args: list[str], env: dict[str, str]) -> str:
    """Run `tidings <args>` and return its stdout; raise with stderr when it fails."""
    done = subprocess.run([TIDINGS, *args], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"tidings {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


@dataclass
class LiveService:
    """A `tidings serve` process; `admin_key` was made with `tidings keys create` before start."""

    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    admin_key: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TIDINGS_DATABASE_URL=f"sqlite:///{self.workdir / 'tidings.db'}",
            TIDINGS_SUBSCRIBER_SECRET="test-subscriber-secret-0123456789abcdef",
            TIDINGS_LOG_LEVEL="warning",
            TIDINGS_DEMO="1",
        )
        env.update(self.extra_env)
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    def create_key(self, scope: str, name: str) -> str:
        out = run_cli(["keys", "create", "--scope", scope, "--name", name], self.env)
        return next(line for line in out.splitlines() if line.startswith("tk_"))

    def start(self) -> LiveService:
        if not self.admin_key:
            self.admin_key = self.create_key("admin", "tests")
        log = open(self.workdir / f"serve-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            [TIDINGS, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tidings serve exited: {self.log_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"tidings serve did not become ready: {self.log_text()}")

    def log_text(self) -> str:
        return (self.workdir / f"serve-{self.port}.log").read_text(errors="replace")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
