"""`tidings send`: one notification from the shell, posted to a running service's HTTP API
(POST /v1/notifications, or /batch for several users) with a server key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import httpx
import typer

from tidings.config import Settings

TIMEOUT = 30.0  # seconds; the API answers a send once it is stored, not once it is delivered


def _listed(values: list[str] | None) -> list[str]:
    """Repeated options and comma lists alike: `--user a --user b,c` → [a, b, c]."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def default_url(settings: Settings) -> str:
    """Where `tidings serve` listens by the same settings (a wildcard host is this machine)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _post(url: str, key: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """The answer's JSON, or exit with what went wrong and what to do about it."""
    try:
        response = httpx.post(
            url.rstrip("/") + path,
            json=body,
            headers={"Authorization": f"Bearer {key}", **headers},
            timeout=TIMEOUT,
        )
    except httpx.ConnectError as exc:
        _fail(
            f"cannot connect to Tidings at {url} ({exc}). Is it running? Start it with "
            "`tidings serve`, or point --url (or TIDINGS_HOST and TIDINGS_PORT) at it."
        )
    except httpx.TimeoutException:
        _fail(f"Tidings at {url} did not answer within {TIMEOUT:g} s")
    except httpx.HTTPError as exc:
        _fail(f"the request to {url} failed: {type(exc).__name__}: {exc}")
    if response.status_code >= 400:
        _fail(_error_message(response))
    try:
        return response.json()
    except ValueError:
        _fail(f"{response.status_code} from {url} is not JSON: {response.text[:200]!r}")


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        message = f"{response.status_code} {error['code']}: {error['message']}"
        details = error.get("details")
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason_phrase}: {response.text[:200]!r}"
    if details:
        message += "\n  " + "\n  ".join(
            json.dumps(d) if not isinstance(d, str) else d
            for d in (details if isinstance(details, list) else [details])
        )
    if response.status_code == 401:
        message += (
            "\nGive a server key with send scope: --key or TIDINGS_API_KEY "
            "(make one with `tidings keys create --scope send --name NAME`)."
        )
    return message


def register(app: typer.Typer, load: Callable[[], Settings]) -> None:
    """Add `send` to the top-level command group."""

    @app.command()
    def send(
        user: Annotated[
            list[str],
            typer.Option(
                "--user", help="Who to notify; repeat it or give a comma list for several."
            ),
        ],
        category: Annotated[
            str, typer.Option(help="What kind of notification (users' preferences go by it).")
        ],
        channel: Annotated[
            list[str] | None,
            typer.Option(
                "--channel",
                help="in_app, email, push, sms or webhook; repeat it or give a comma list "
                "(default: every channel the user can be reached on and allows).",
            ),
        ] = None,
        title: Annotated[str | None, typer.Option(help="The title (inline content).")] = None,
        body: Annotated[str | None, typer.Option(help="The text (inline content).")] = None,
        template: Annotated[
            str | None, typer.Option(help="A template's key, instead of or with --title/--body.")
        ] = None,
        data: Annotated[
            str | None, typer.Option(help="A JSON object: the template's `data` variables.")
        ] = None,
        priority: Annotated[
            str | None, typer.Option(help="high, normal (the default) or low.")
        ] = None,
        idempotency_key: Annotated[
            str | None,
            typer.Option(help="Send again with the same key within 24 h: nothing new is sent."),
        ] = None,
        url: Annotated[
            str | None,
            typer.Option(
                help="The running service [TIDINGS_HOST, TIDINGS_PORT: http://HOST:PORT]."
            ),
        ] = None,
        key: Annotated[
            str | None, typer.Option(help="A server key with send scope [TIDINGS_API_KEY].")
        ] = None,
    ) -> None:
        """Send one notification through a running service; print its id (one per user)."""
        users = _listed(user)
        if not users:
            raise typer.BadParameter("give at least one user id", param_hint="--user")
        if idempotency_key is not None and len(users) > 1:
            raise typer.BadParameter(
                "an Idempotency-Key names one notification: give one --user",
                param_hint="--idempotency-key",
            )
        order: dict[str, Any] = {"category": category}
        if channel:
            order["channels"] = _listed(channel)
        content = {name: text for name, text in (("title", title), ("body", body)) if text}
        if content:
            order["content"] = content
        if template is not None:
            order["template"] = template
        if data is not None:
            try:
                order["data"] = json.loads(data)
            except ValueError as exc:
                raise typer.BadParameter(f"not JSON: {exc}", param_hint="--data") from None
            if not isinstance(order["data"], dict):
                raise typer.BadParameter("give a JSON object, {…}", param_hint="--data")
        if priority is not None:
            order["priority"] = priority
        settings = load()
        key = key or settings.api_key
        if not key:
            _fail(
                "no server key: give --key or set TIDINGS_API_KEY (a key with send scope, "
                "from `tidings keys create --scope send --name NAME`)",
                code=2,
            )
        url = url or default_url(settings)
        if not url.startswith(("http://", "https://")):
            raise typer.BadParameter(
                f"{url!r} is not an http:// or https:// URL", param_hint="--url"
            )
        if len(users) == 1:
            headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
            answer = _post(url, key, "/v1/notifications", order | {"user_id": users[0]}, headers)
            typer.echo(answer["id"])
            return
        batch = {"notifications": [order | {"user_id": u} for u in users]}
        results = _post(url, key, "/v1/notifications/batch", batch, {})["results"]
        failed = 0
        for user_id, result in zip(users, results, strict=True):
            if "id" in result:
                typer.echo(result["id"])
            else:
                failed += 1
                error = result.get("error", {})
                typer.echo(
                    f"error: user {user_id}: {error.get('code')}: {error.get('message')}", err=True
                )
        if failed:
            raise typer.Exit(1)
