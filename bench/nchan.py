"""Nchan (Debian's nginx-light + libnginx-mod-nchan) as a realtime baseline: one channel per
user, WebSocket subscribers, and a publisher that reaches up to 255 channels per POST."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.live import free_port

MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules")
MAX_CHANNELS_PER_PUBLISH = 255  # nchan_channel_id_split_delimiter's limit

CONFIG = """
load_module {module};
user {user} {group};
worker_processes {workers};
worker_rlimit_nofile {files};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  nchan_shared_memory_size 512m;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    # GET /sub/u42: user u42's channel, over WebSocket.
    location ~ ^/sub/(.+)$ {{
      nchan_subscriber websocket;
      nchan_channel_id $1;
      nchan_subscriber_first_message newest;
    }}
    # POST /pub?channels=u1,u2,…: one message to each of up to 255 channels.
    location = /pub {{
      nchan_publisher;
      nchan_channel_id $arg_channels;
      nchan_channel_id_split_delimiter ",";
      nchan_max_channel_id_length 4096;  # the list of ids counts as one id (1024 by default)
      nchan_message_buffer_length 1;
      nchan_message_timeout 5m;
    }}
  }}
}}
"""


def module_path() -> str:
    for directory in MODULE_DIRS:
        candidate = Path(directory) / "ngx_nchan_module.so"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(
        "Nchan not found: apt-get install nginx-light libnginx-mod-nchan (make bench does)"
    )


@dataclass
class Nchan:
    url: str
    port: int
    master: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        """The master and its workers."""
        children = Path(f"/proc/{self.master.pid}/task/{self.master.pid}/children")
        return [self.master.pid, *(int(p) for p in children.read_text().split())]


@contextmanager
def running(*, workers: int, files: int) -> Iterator[Nchan]:
    """nginx with Nchan in the foreground, as the current user, in a temporary directory."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nchan-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            CONFIG.format(
                module=module_path(),
                user=pwd.getpwuid(os.geteuid()).pw_name,
                group=grp.getgrgid(os.getegid()).gr_name,
                workers=workers,
                files=files,
                connections=files - 100,
                dir=tmp,
                port=port,
            )
        )
        with open(Path(tmp) / "stderr.log", "wb") as stderr:
            master = subprocess.Popen(
                [nginx, "-p", tmp, "-c", str(conf), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        server = Nchan(f"http://127.0.0.1:{port}", port, master)
        try:
            _wait_ready(server, Path(tmp))
            yield server
        finally:
            master.terminate()
            try:
                master.wait(10)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()


def _wait_ready(server: Nchan, tmp: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.master.poll() is not None:
            raise RuntimeError(f"nginx exited: {(tmp / 'stderr.log').read_text()}")
        try:
            # A publish to a channel nobody has opened yet: 202 once Nchan answers.
            httpx.post(f"{server.url}/pub?channels=ready", content=b"{}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not start: {(tmp / 'stderr.log').read_text()}")
