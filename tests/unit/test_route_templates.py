"""Routing with a template: locale, overrides, missing channels, render errors, critical."""

from __future__ import annotations

from typing import Any

from tidings.domain.models import (
    Channel,
    DeliveryStatus,
    Notification,
    Preferences,
    User,
)
from tidings.domain.templates import TemplateVersion, parse_template
from tidings.pipeline.route import plan

TEMPLATE = parse_template(
    "shipped",
    3,
    {
        "category": "order_shipped",
        "locales": {
            "en": {
                "in_app": {"title": "Order {{ order_id }}", "body": "Hi {{ user.name }}"},
                "sms": {"body": "Order {{ order_id }}"},
            },
            "pt": {"in_app": {"title": "Pedido {{ order_id }}", "body": "Olá {{ user.name }}"}},
        },
        "default_locale": "en",
    },
)
USER = User(id="u1", name="Ana", phone="+15550000001", email="ana@example.test", locale="pt-BR")


def _notification(**extra: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": "n1",
        "user_id": "u1",
        "category": "orders",
        "template": "shipped",
        "data": {"order_id": "A-1"},
    }
    return Notification(**(fields | extra))


def _routed(
    notification: Notification,
    template: TemplateVersion | None = TEMPLATE,
    prefs: Preferences | None = None,
) -> dict[Channel, tuple[DeliveryStatus, str | None, dict[str, Any] | None]]:
    result = plan(notification, USER, prefs or Preferences(), [], template=template)
    return {d.channel: (d.status, d.last_error, c) for d, c in result.deliveries}


def test_each_channel_renders_in_the_users_locale_with_fallback() -> None:
    routed = _routed(_notification())
    assert routed[Channel.IN_APP][2] == {
        "title": "Pedido A-1",
        "body": "Olá Ana",
        "category": "orders",
    }
    assert routed[Channel.SMS][2] == {"body": "Order A-1"}  # pt has no sms: the default


def test_channels_the_template_lacks_are_left_out_when_none_were_named() -> None:
    assert set(_routed(_notification())) == {Channel.IN_APP, Channel.SMS}


def test_a_named_channel_the_template_lacks_fails_saying_so() -> None:
    routed = _routed(_notification(channels=["email"]))
    assert routed[Channel.EMAIL][:2] == (
        DeliveryStatus.FAILED,
        "template shipped has no email part",
    )


def test_inline_content_overrides_parts_per_channel() -> None:
    content = {"body": "Everywhere", "sms": {"body": "Just sms"}}
    routed = _routed(_notification(content=content))
    assert routed[Channel.IN_APP][2] == {
        "title": "Pedido A-1",
        "body": "Everywhere",
        "category": "orders",
    }
    assert routed[Channel.SMS][2] == {"body": "Just sms"}


def test_a_render_error_fails_that_delivery_and_queues_nothing_for_it() -> None:
    notification = _notification(data={}, channels=["in_app"])
    result = plan(notification, USER, Preferences(), [], template=TEMPLATE)
    [(delivery, content)] = result.deliveries
    assert delivery.status is DeliveryStatus.FAILED and content is None
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("render: pt.in_app.title:")
    assert result.jobs == []


def test_a_template_gone_since_accept_fails_every_delivery() -> None:
    routed = _routed(_notification(channels=["in_app"]), template=None)
    assert routed[Channel.IN_APP][:2] == (DeliveryStatus.FAILED, "template shipped does not exist")


def test_a_critical_template_is_not_blocked_by_preferences() -> None:
    off = Preferences(channels={"in_app": False})
    critical = parse_template(
        "shipped",
        1,
        {
            "category": "security",
            "critical": True,
            "locales": {"en": {"in_app": {"title": "t"}}},
            "default_locale": "en",
        },
    )
    assert _routed(_notification(), prefs=off)[Channel.IN_APP][0] is DeliveryStatus.SUPPRESSED
    assert _routed(_notification(), critical, off)[Channel.IN_APP][0] is DeliveryStatus.DELIVERED
