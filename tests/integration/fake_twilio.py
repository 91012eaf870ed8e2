"""A fake of Twilio's Messages API (2010-04-01, form-encoded) that checks basic auth, path
and form as Twilio does, and answers like it."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

from tests.integration.local_http import LocalServer, Request, Response

SID = "AC" + "0" * 32
TOKEN = "f" * 32
FROM = "+15005550006"  # Twilio's magic "valid sender" test number
SERVICE = "MG" + "1" * 32
CALLBACK = "https://tidings.example.com/v1/providers/twilio/events"
INVALID_TO = "+15005550001"  # Twilio's magic test number answered with error 21211


def error(status: int, code: int, message: str, **headers: str) -> Response:
    """An error the way Twilio's REST API answers one."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(
        status, {"content-type": "application/json", **headers}, json.dumps(body).encode()
    )


class FakeTwilio:
    """Checks auth, path and form like the Messages API; answers `next_answer` when set."""

    def __init__(self) -> None:
        self.server = LocalServer(self.handle)
        self.next_answer: Response | None = None
        self.created: list[dict[str, str]] = []
        self.refusals: list[str] = []

    def refuse(self, response: Response, why: str) -> Response:
        self.refusals.append(why)
        return response

    def handle(self, request: Request) -> Response:
        expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self.refuse(error(401, 20003, "Authenticate"), "basic auth")
        if (request.method, request.target) != (
            "POST",
            f"/2010-04-01/Accounts/{SID}/Messages.json",
        ):
            return self.refuse(error(404, 20404, "not found"), f"{request.method} {request.target}")
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return self.refuse(error(400, 20001, "form expected"), "content type")
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        if "To" not in form or not form.get("Body"):
            return self.refuse(error(400, 21602, "Message body is required."), f"form {form}")
        if ("From" in form) == ("MessagingServiceSid" in form):
            return self.refuse(error(400, 21603, "A 'From' phone number is required."), "sender")
        unknown = set(form) - {"To", "From", "MessagingServiceSid", "Body", "StatusCallback"}
        if unknown:
            return self.refuse(error(400, 20001, "unknown parameters"), f"unknown {unknown}")
        if form["To"] == INVALID_TO:
            return error(400, 21211, f"The 'To' number {INVALID_TO} is not a valid phone number.")
        if self.next_answer is not None:
            return self.next_answer
        self.created.append(form)
        sid = f"SM{len(self.created):032x}"
        body = {"sid": sid, "status": "queued", "to": form["To"], "account_sid": SID}
        return Response(201, {"content-type": "application/json"}, json.dumps(body).encode())
