"""Notification templates: check an uploaded version, pick a locale, render one channel's parts.

Jinja2 runs in an immutable sandbox with StrictUndefined; inline `content` is derived, not rendered.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from tidings.domain.models import Channel, User

CHANNEL_PARTS: dict[Channel, frozenset[str]] = {
    Channel.IN_APP: frozenset({"title", "body", "action_url", "data"}),
    Channel.EMAIL: frozenset({"subject", "text", "html"}),
    Channel.PUSH: frozenset({"title", "body", "data"}),
    Channel.SMS: frozenset({"body"}),
    Channel.WEBHOOK: frozenset({"body"}),
}
# Parts holding any JSON; their string leaves are templates, everything else passes through.
JSON_PARTS = frozenset(
    {(Channel.IN_APP, "data"), (Channel.PUSH, "data"), (Channel.WEBHOOK, "body")}
)
# Each group needs at least one of its parts, or the channel has nothing to say.
REQUIRED_PARTS: dict[Channel, tuple[tuple[str, ...], ...]] = {
    Channel.IN_APP: (("title", "body"),),
    Channel.EMAIL: (("subject",), ("text", "html")),
    Channel.PUSH: (("title", "body"),),
    Channel.SMS: (("body",),),
    Channel.WEBHOOK: (("body",),),
}
CHANNEL_NAMES = frozenset(c.value for c in Channel)
USER_FIELDS = ("id", "name", "email", "phone", "locale", "timezone", "data")
COMPILED_CACHE_SIZE = 2048
_LOCALE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One thing wrong with an uploaded template; `where` is a dotted path into its body."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class TemplateError(ValueError):
    """An uploaded template was refused; `problems` lists every reason, not just the first."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class TemplateRenderError(Exception):
    """One part failed to render (missing variable, sandbox refusal …); `locale` is None inline."""

    def __init__(self, locale: str | None, channel: str, part: str, message: str) -> None:
        self.locale, self.channel, self.part, self.message = locale, channel, part, message
        where = ".".join(p for p in (locale, channel, part) if p)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateVersion:
    """One immutable version of a template, as uploaded with `PUT /v1/templates/{key}`."""

    key: str
    version: int
    category: str
    critical: bool = False
    locales: dict[str, dict[str, dict[str, Any]]]  # locale -> channel -> part -> source
    default_locale: str
    created_at: datetime | None = None

    @property
    def channels(self) -> frozenset[Channel]:
        """The channels this template can render (the default locale has every one of them)."""
        return frozenset(Channel(c) for c in self.locales[self.default_locale])


def validate_template(body: Any) -> list[TemplateProblem]:
    """Every problem with an uploaded template body; an empty list means it is acceptable."""
    if not isinstance(body, Mapping):
        return [TemplateProblem("", "a template must be a JSON object")]
    problems: list[TemplateProblem] = []
    if not isinstance(body.get("category"), str) or not body["category"]:
        problems.append(TemplateProblem("category", "required, a non-empty string"))
    if not isinstance(body.get("critical", False), bool):
        problems.append(TemplateProblem("critical", "must be true or false"))
    locales = body.get("locales")
    if not isinstance(locales, Mapping) or not locales:
        problems.append(TemplateProblem("locales", "required, an object with at least one locale"))
        locales = {}
    seen: dict[str, str] = {}
    for locale, channels in locales.items():
        if not _LOCALE_TAG.match(locale):
            problems.append(
                TemplateProblem(f"locales.{locale}", "not a locale tag like en or pt-BR")
            )
        elif (twin := seen.setdefault(normalize_locale(locale), locale)) != locale:
            problems.append(TemplateProblem(f"locales.{locale}", f"the same locale as {twin}"))
        problems += _channel_problems(f"locales.{locale}", channels)
    default = body.get("default_locale")
    if not isinstance(default, str) or default not in locales:
        problems.append(TemplateProblem("default_locale", "required, one of the keys of locales"))
    elif isinstance(locales[default], Mapping):
        # Fallback ends at the default locale, so it must cover every channel any locale has.
        for locale, channels in locales.items():
            for channel in channels if isinstance(channels, Mapping) else ():
                if channel in CHANNEL_PARTS and channel not in locales[default]:
                    where = f"locales.{locale}.{channel}"
                    problems.append(TemplateProblem(where, f"missing from {default}, the default"))
    return problems


def parse_template(
    key: str, version: int, body: Any, *, created_at: datetime | None = None
) -> TemplateVersion:
    """A checked TemplateVersion from an uploaded body, or TemplateError listing every problem."""
    problems = validate_template(body)
    if problems:
        raise TemplateError(problems)
    return TemplateVersion(
        key=key,
        version=version,
        category=body["category"],
        critical=body.get("critical", False),
        locales={
            loc: {ch: dict(parts) for ch, parts in chs.items()}
            for loc, chs in body["locales"].items()
        },
        default_locale=body["default_locale"],
        created_at=created_at,
    )


def normalize_locale(locale: str) -> str:
    """`pt_BR`, `PT-br` and `pt-BR` are one locale: compare them as `pt-br`."""
    return locale.strip().replace("_", "-").lower()


def pick_locale(
    template: TemplateVersion, user_locale: str | None, *, channel: Channel | str | None = None
) -> str:
    """The template locale for a reader: exact match, then the bare language (`pt` for `pt-BR`),
    then another region of that language (`pt-PT` for `pt-BR`), then the default locale.

    With `channel`, only locales that define that channel are considered.
    """
    wanted_channel = Channel(channel).value if channel is not None else None
    by_norm = {
        normalize_locale(loc): loc
        for loc, channels in template.locales.items()
        if wanted_channel is None or wanted_channel in channels
    }
    if user_locale:
        wanted = normalize_locale(user_locale)
        language = wanted.split("-")[0]
        for candidate in (wanted, language):
            if candidate in by_norm:
                return by_norm[candidate]
        siblings = sorted(loc for norm, loc in by_norm.items() if norm.split("-")[0] == language)
        if siblings:
            return siblings[0]
    return template.default_locale


def user_variables(user: User | Mapping[str, Any] | None) -> dict[str, Any]:
    """The `user` a template sees: public fields only, each present (None when unknown)."""
    if user is None:
        return {name: None for name in USER_FIELDS}
    if isinstance(user, User):
        return {name: getattr(user, name) for name in USER_FIELDS}
    return {name: user.get(name) for name in USER_FIELDS}


def render(
    template: TemplateVersion,
    channel: Channel | str,
    *,
    data: Mapping[str, Any],
    user: User | Mapping[str, Any] | None = None,
    locale: str | None = None,
) -> dict[str, Any]:
    """Every part of `channel`, rendered for `locale` (default: the user's) with `data` and `user`.

    Data keys are also top-level names (`{{ order_id }}` = `{{ data.order_id }}`); the names
    `data` and `user` themselves always mean the variables. Only email `html` is autoescaped.
    """
    ch = Channel(channel)
    user_vars = user_variables(user)
    chosen = pick_locale(template, locale or user_vars["locale"], channel=ch)
    parts = template.locales[chosen].get(ch.value)
    if parts is None:
        raise TemplateRenderError(chosen, ch.value, "", "the template has no such channel")
    context = {**data, "data": dict(data), "user": user_vars}
    rendered: dict[str, Any] = {}
    for part, source in parts.items():

        def render_leaf(path: str, text: str, part: str = part) -> str:
            try:
                return _compile(text, ch is Channel.EMAIL and part == "html").render(context)
            except TemplateSyntaxError as exc:
                raise TemplateRenderError(chosen, ch.value, path, _syntax(exc)) from exc
            except Exception as exc:  # anything a template does wrong is that template's fault
                raise TemplateRenderError(chosen, ch.value, path, _runtime(exc)) from exc

        rendered[part] = _map_strings(source, part, render_leaf)
    return rendered


def render_content(content: Mapping[str, Any], channel: Channel | str) -> dict[str, Any]:
    """The parts of `channel` for a notification sent with inline `content` instead of a template.

    Content is literal text, never a template. Top-level `title`, `body`, `action_url` and
    `data` feed every channel; an object under a channel's name (`"email": {"subject": …}`)
    overrides parts for that channel alone. Derivations, before overrides:
    in_app: title, body, action_url, data · email: subject ← title, text ← body (no html) ·
    push: title, body, data · sms: body ← body, else title · webhook: body ← an object of the
    top-level title, body, action_url and data. None counts as absent. A channel left without
    its required parts (email subject, sms body …) raises TemplateRenderError with locale None.
    """
    ch = Channel(channel)
    top = {
        k: content[k] for k in ("title", "body", "action_url", "data") if content.get(k) is not None
    }
    derived: dict[str, Any]
    if ch is Channel.IN_APP or ch is Channel.PUSH:
        derived = {k: v for k, v in top.items() if k in CHANNEL_PARTS[ch]}
    elif ch is Channel.EMAIL:
        derived = {"subject": top.get("title"), "text": top.get("body")}
    elif ch is Channel.SMS:
        derived = {"body": top.get("body", top.get("title"))}
    else:
        derived = {"body": top}
    override = content.get(ch.value)
    if isinstance(override, Mapping):
        derived.update({k: v for k, v in override.items() if k in CHANNEL_PARTS[ch]})
    parts = {k: v for k, v in derived.items() if v is not None}
    for group in REQUIRED_PARTS[ch]:
        if not any(parts.get(p) not in (None, "", {}) for p in group):
            wanted = " or ".join(group)
            raise TemplateRenderError(None, ch.value, group[0], f"inline content gives no {wanted}")
    return parts


def validate_content(content: Any) -> list[TemplateProblem]:
    """Every problem with an inline `content` object: unknown keys, wrong types."""
    if not isinstance(content, Mapping):
        return [TemplateProblem("content", "must be a JSON object")]
    problems: list[TemplateProblem] = []
    for key, value in content.items():
        where = f"content.{key}"
        if key in ("title", "body", "action_url"):
            if value is not None and not isinstance(value, str):
                problems.append(TemplateProblem(where, "must be a string"))
        elif key == "data":
            if value is not None and not isinstance(value, Mapping):
                problems.append(TemplateProblem(where, "must be an object"))
        elif key in CHANNEL_NAMES:
            problems += _part_problems(where, Channel(key), value, compile_text=False)
        else:
            allowed = "title, body, action_url, data or a channel name"
            problems.append(TemplateProblem(where, f"unknown key; expected {allowed}"))
    return problems


def _channel_problems(where: str, channels: Any) -> list[TemplateProblem]:
    if not isinstance(channels, Mapping) or not channels:
        return [TemplateProblem(where, "must be an object of channels")]
    problems: list[TemplateProblem] = []
    for name, parts in channels.items():
        if name not in {c.value for c in Channel}:
            known = ", ".join(c.value for c in Channel)
            problems.append(TemplateProblem(f"{where}.{name}", f"unknown channel; known: {known}"))
            continue
        channel = Channel(name)
        problems += _part_problems(f"{where}.{name}", channel, parts, compile_text=True)
        if isinstance(parts, Mapping):
            for group in REQUIRED_PARTS[channel]:
                if not any(p in parts for p in group):
                    wanted = " or ".join(group)
                    problems.append(TemplateProblem(f"{where}.{name}", f"needs {wanted}"))
    return problems


def _part_problems(
    where: str, channel: Channel, parts: Any, *, compile_text: bool
) -> list[TemplateProblem]:
    if not isinstance(parts, Mapping):
        return [TemplateProblem(where, "must be an object of parts")]
    problems: list[TemplateProblem] = []
    for part, value in parts.items():
        if part not in CHANNEL_PARTS[channel]:
            known = ", ".join(sorted(CHANNEL_PARTS[channel]))
            problems.append(
                TemplateProblem(f"{where}.{part}", f"unknown part; {channel.value} has {known}")
            )
        elif (channel, part) not in JSON_PARTS and not isinstance(value, str):
            problems.append(TemplateProblem(f"{where}.{part}", "must be a string"))
        elif compile_text:
            for path, text in _strings(value, part):
                try:
                    _compile(text, channel is Channel.EMAIL and part == "html")
                except TemplateSyntaxError as exc:
                    problems.append(TemplateProblem(f"{where}.{path}", _syntax(exc)))
    return problems


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Each string leaf of a JSON value, with its path (`body.items[0].name`)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _map_strings(value: Any, path: str, fn: Callable[[str, str], str]) -> Any:
    """`value` with every string leaf replaced by fn(path, leaf); keys and other leaves kept."""
    if isinstance(value, str):
        return fn(path, value)
    if isinstance(value, Mapping):
        return {k: _map_strings(v, f"{path}.{k}", fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, f"{path}[{i}]", fn) for i, v in enumerate(value)]
    return value


def _syntax(exc: TemplateSyntaxError) -> str:
    return f"syntax error on line {exc.lineno}: {exc.message}"


def _runtime(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    return str(exc) or type(exc).__name__


class _Sandbox(ImmutableSandboxedEnvironment):
    """Also refuses arithmetic that would eat the worker's memory (`'x' * 10**9`, `9 ** 9 ** 9`)."""

    intercepted_binops = frozenset({"*", "**"})
    max_size = 100_000

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left).bit_length() * right > self.max_size:
                raise SecurityError("the result of ** would be too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * times > self.max_size:
                        raise SecurityError("the result of * would be too long")
        return super().call_binop(context, operator, left, right)


# Pure caches, not configuration: the same sources render on every routed notification.
@functools.lru_cache(maxsize=2)
def _blank_none(value: Any) -> Any:
    # A known-but-empty field (a bare user's name) prints nothing, not the text "None".
    return "" if value is None else value


def _environment(autoescape: bool) -> _Sandbox:
    return _Sandbox(
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        finalize=_blank_none,
    )


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compile(source: str, autoescape: bool) -> jinja2.Template:
    return _environment(autoescape).from_string(source)
