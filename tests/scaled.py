"""A whole scaled-out Tidings from deploy/Procfile: two `tidings api`, two `tidings worker`, on a
fresh PostgreSQL database and a namespace of its own on the shared RabbitMQ and Redis.

The workers reach RabbitMQ through a TcpProxy, so a test can cut their broker connections.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.live import TIDINGS, free_port, run_cli
from tests.services import POSTGRES_URL, RABBITMQ_URL, REDIS_URL, require_tcp
from tests.tcp_proxy import TcpProxy
from tidings.domain.models import Channel
from tidings.pipeline.route import deliver_queue
from tidings.pipeline.route_jobs import ROUTE_QUEUE
from tidings.pipeline.status_webhooks import STATUS_QUEUE
from tidings.queue.rabbitmq import BUCKETS_MS, LEVELS

PROCFILE = Path(__file__).parents[1] / "deploy" / "Procfile"
READY_LINE = "Tidings worker ready"


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """The process types of a Procfile: name -> shell command."""
    entries = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line.strip())
        if match and not line.startswith("#"):
            entries[match[1]] = match[2]
    return entries


class ThreadedProxy:
    """A TcpProxy on its own event loop thread, so it forwards whatever the test is doing."""

    def __init__(self, host: str, port: int) -> None:
        self.proxy = TcpProxy(host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> ThreadedProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        return self

    @property
    def accepted(self) -> int:
        return self.proxy.accepted

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.cut)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return  # stopped already
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def admin_sql(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


async def _delete_rabbitmq_namespace(namespace: str) -> None:
    """Every queue and the exchange a RabbitQueue with this prefix may have declared."""
    import aio_pika

    names = [ROUTE_QUEUE, STATUS_QUEUE, *(deliver_queue(c) for c in Channel)]
    queues = [f"{namespace}.{name}.{level}" for name in names for level in LEVELS]
    queues += [f"{namespace}.delay.{bucket}ms" for bucket in BUCKETS_MS]
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue, if_unused=False, if_empty=False)
        await channel.exchange_delete(f"{namespace}.delay")


@dataclass
class ScaledSet:
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    commands: dict[str, str] = field(default_factory=procfile)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_key: str = ""
    proxy: ThreadedProxy | None = None
    _ready_lines: dict[str, int] = field(default_factory=dict)  # before the latest start

    @property
    def database(self) -> str:
        return f"tidings_{self.namespace}"

    @property
    def env(self) -> dict[str, str]:
        """What every process of the set (and the CLI) runs with."""
        env = dict(os.environ)
        env["PATH"] = f"{Path(TIDINGS).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(
            TIDINGS_DATABASE_URL=POSTGRES_URL.rsplit("/", 1)[0] + "/" + self.database,
            TIDINGS_QUEUE_URL=RABBITMQ_URL,
            TIDINGS_BUS_URL=REDIS_URL,
            TIDINGS_NAMESPACE=self.namespace,
            TIDINGS_SUBSCRIBER_SECRET="test-subscriber-secret-0123456789abcdef",
            TIDINGS_LOG_LEVEL="warning",
        )
        env.update({f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()})
        env.update(self.extra_env)
        return env

    @property
    def apis(self) -> list[str]:
        return [name for name in self.commands if name.startswith("api")]

    @property
    def workers(self) -> list[str]:
        return [name for name in self.commands if name.startswith("worker")]

    def url(self, api: str) -> str:
        return f"http://127.0.0.1:{self.ports[api]}"

    def ws_url(self, api: str) -> str:
        return f"ws://127.0.0.1:{self.ports[api]}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def start(self) -> ScaledSet:
        for service, url in (
            ("PostgreSQL", POSTGRES_URL),
            ("RabbitMQ", RABBITMQ_URL),
            ("Redis", REDIS_URL),
        ):
            require_tcp(url, service)
        admin_sql(f'CREATE DATABASE "{self.database}"')
        broker = urlsplit(RABBITMQ_URL)
        self.proxy = ThreadedProxy(broker.hostname or "127.0.0.1", broker.port or 5672).start()
        self.ports = {name: free_port() for name in self.apis}
        run_cli(["migrate"], self.env)
        out = run_cli(["keys", "create", "--scope", "admin", "--name", "tests"], self.env)
        self.admin_key = next(line for line in out.splitlines() if line.startswith("tk_"))
        for name in self.commands:
            self.start_process(name, wait=False)
        for name in self.commands:
            self.wait_ready(name)
        return self

    def worker_env(self) -> dict[str, str]:
        assert self.proxy is not None
        broker = urlsplit(RABBITMQ_URL)
        through_proxy = broker._replace(
            netloc=f"{broker.username}:{broker.password}@127.0.0.1:{self.proxy.proxy.port}"
        )
        return {"TIDINGS_QUEUE_URL": urlunsplit(through_proxy)}

    def start_process(self, name: str, *, wait: bool = True, **extra_env: str) -> None:
        env = self.env | (self.worker_env() if name in self.workers else {}) | extra_env
        self._ready_lines[name] = self.log_text(name).count(READY_LINE)
        log = open(self.log_path(name), "ab")
        # exec: the process is `tidings` itself, so signals reach it and not a shell.
        self.processes[name] = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {self.commands[name]}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}): {self.log_text(name)}")
            if name in self.workers:
                if self.log_text(name).count(READY_LINE) > self._ready_lines[name]:
                    return
            else:
                try:
                    if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not become ready: {self.log_text(name)}")

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def log_text(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str) -> None:
        """kill -9: no shutdown code runs."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def terminate(self, *names: str, timeout: float = 30) -> list[int]:
        """SIGTERM to each at once; their exit codes once they have drained and ended."""
        for name in names:
            self.processes[name].send_signal(signal.SIGTERM)
        return [self.processes[name].wait(timeout) for name in names]

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.proxy is not None:
            self.proxy.stop()
        asyncio.run(_delete_rabbitmq_namespace(self.namespace))
        admin_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
