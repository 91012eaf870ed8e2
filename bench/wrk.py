"""Drive an HTTP endpoint with wrk (Debian's package): a C load generator, so the client is
not the bottleneck the way a Python client would be on two shared cores."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
{headers}
local body = [==[{body}]==]
local path = [==[{path}]==]
local counter = 0
request = function()
  counter = counter + 1
  -- Vary the user so the load spreads over many inboxes, as real traffic does.
  local user = "u" .. (counter % {users})
  local b = nil
  if body ~= "" then b = string.gsub(body, "USER", user) end
  return wrk.format(nil, (string.gsub(path, "USER", user)), nil, b)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class WrkResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    return path


def run(
    base_url: str,
    path: str,
    *,
    method: str = "POST",
    body: str = "",
    headers: dict[str, str] | None = None,
    seconds: float = 10,
    connections: int = 32,
    users: int = 1000,
) -> WrkResult:
    """Send requests for `seconds`; the text USER in `path` and `body` becomes one of `users`
    user ids (u0, u1, …), varying per request."""
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(
            SCRIPT.format(method=method, headers=lines, body=body, path=path, users=users)
        )
        done = subprocess.run(
            [
                wrk_binary(),
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    return WrkResult(
        requests=data["requests"],
        per_second=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        failed=data["non2xx"] + data["socket_errors"],
    )
