"""Template checking, locale fallback, rendering per channel, and inline content derivation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tidings.domain.models import Channel, User
from tidings.domain.templates import (
    TemplateError,
    TemplateRenderError,
    TemplateVersion,
    parse_template,
    pick_locale,
    render,
    render_content,
    validate_content,
    validate_template,
)

BODY: dict[str, Any] = {
    "category": "order_shipped",
    "critical": False,
    "locales": {
        "en": {
            "in_app": {
                "title": "Order {{ order_id }} shipped",
                "body": "{{ data.carrier }} has it, {{ user.name }}",
                "action_url": "https://shop.test/orders/{{ order_id }}",
            },
            "email": {
                "subject": "Shipped: {{ order_id }}",
                "text": "Hi {{ user.name }}, {{ data.note }}",
                "html": "<p>Hi {{ user.name }}, {{ data.note }}</p>",
            },
            "push": {
                "title": "Shipped",
                "body": "{{ order_id }}",
                "data": {"id": "{{ order_id }}"},
            },
            "sms": {"body": "Order {{ order_id }} shipped"},
            "webhook": {
                "body": {
                    "order": "{{ order_id }}",
                    "items": ["{{ data.carrier }}", 3, None],
                    "meta": {"who": "{{ user.id }}", "ok": True},
                }
            },
        },
        "pt": {"in_app": {"title": "Pedido {{ order_id }} enviado"}},
        "pt-BR": {"in_app": {"title": "Pedido {{ order_id }} a caminho"}},
        "de-AT": {"in_app": {"title": "Bestellung {{ order_id }}"}},
    },
    "default_locale": "en",
}
DATA = {"order_id": "A-1001", "carrier": "FedEx", "note": "<b>fragile</b>"}
USER = User(id="u_42", name="Ana", email="ana@example.test", locale="en")


def make(body: dict[str, Any] | None = None) -> TemplateVersion:
    return parse_template("order_shipped", 1, copy.deepcopy(body or BODY))


def with_part(channel: str, part: str, source: Any) -> TemplateVersion:
    body = copy.deepcopy(BODY)
    body["locales"]["en"][channel][part] = source
    return make(body)


def problems_of(body: Any) -> list[str]:
    return [str(p) for p in validate_template(body)]


# --- validation ---------------------------------------------------------------------------


def test_a_well_formed_template_has_no_problems() -> None:
    assert validate_template(BODY) == []


def test_parse_template_keeps_the_uploaded_fields() -> None:
    template = make()
    assert (template.key, template.version, template.category) == (
        "order_shipped",
        1,
        "order_shipped",
    )
    assert template.critical is False and template.default_locale == "en"
    assert Channel.WEBHOOK in template.channels


def test_parse_template_raises_with_every_problem() -> None:
    body = copy.deepcopy(BODY)
    body["category"] = ""
    body["locales"]["en"]["fax"] = {"body": "x"}
    with pytest.raises(TemplateError) as caught:
        parse_template("k", 1, body)
    assert [p.where for p in caught.value.problems] == ["category", "locales.en.fax"]


def test_unknown_channel_is_a_problem_naming_the_known_ones() -> None:
    body = copy.deepcopy(BODY)
    body["locales"]["en"]["fax"] = {"body": "x"}
    assert problems_of(body) == [
        "locales.en.fax: unknown channel; known: in_app, email, push, sms, webhook"
    ]


def test_unknown_part_is_a_problem_naming_the_channel_parts() -> None:
    body = copy.deepcopy(BODY)
    body["locales"]["en"]["sms"]["title"] = "x"
    assert problems_of(body) == ["locales.en.sms.title: unknown part; sms has body"]


def test_missing_required_part_is_a_problem() -> None:
    body = copy.deepcopy(BODY)
    del body["locales"]["en"]["email"]["subject"]
    assert problems_of(body) == ["locales.en.email: needs subject"]


def test_text_part_must_be_a_string() -> None:
    body = copy.deepcopy(BODY)
    body["locales"]["en"]["sms"]["body"] = {"not": "text"}
    assert problems_of(body) == ["locales.en.sms.body: must be a string"]


def test_default_locale_must_be_one_of_the_locales() -> None:
    assert problems_of({**BODY, "default_locale": "fr"}) == [
        "default_locale: required, one of the keys of locales"
    ]


def test_a_channel_missing_from_the_default_locale_is_a_problem() -> None:
    body = copy.deepcopy(BODY)
    body["locales"]["pt"]["sms"] = {"body": "oi"}
    del body["locales"]["en"]["sms"]
    assert problems_of(body) == ["locales.pt.sms: missing from en, the default"]


def test_two_spellings_of_one_locale_are_a_problem() -> None:
    body = copy.deepcopy(BODY)
    body["locales"]["pt_br"] = {"in_app": {"title": "x"}}
    assert problems_of(body) == ["locales.pt_br: the same locale as pt-BR"]


def test_a_non_object_body_is_a_problem() -> None:
    assert problems_of(["nope"]) == ["a template must be a JSON object"]


def test_syntax_error_is_reported_with_locale_channel_part_and_line() -> None:
    body = copy.deepcopy(BODY)
    body["locales"]["pt-BR"]["in_app"]["title"] = "Pedido\n{{ order_id }"
    [problem] = validate_template(body)
    assert problem.where == "locales.pt-BR.in_app.title"
    assert problem.message.startswith("syntax error on line 2:")


def test_syntax_error_inside_webhook_json_names_the_json_path() -> None:
    body = copy.deepcopy(BODY)
    body["locales"]["en"]["webhook"]["body"]["items"][0] = "{% if %}"
    [problem] = validate_template(body)
    assert problem.where == "locales.en.webhook.body.items[0]"


# --- locale fallback ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_locale", "expected"),
    [
        ("pt-BR", "pt-BR"),
        ("pt_BR", "pt-BR"),
        ("PT-br", "pt-BR"),
        ("pt", "pt"),
        ("pt-PT", "pt"),  # no pt-PT: its language
        ("de", "de-AT"),  # no de: another region of the language
        ("de-CH", "de-AT"),
        ("fr-FR", "en"),  # nothing French: the default
        ("", "en"),
        (None, "en"),
    ],
)
def test_pick_locale_falls_back_exact_then_language_then_default(
    user_locale: str | None, expected: str
) -> None:
    assert pick_locale(make(), user_locale) == expected


def test_pick_locale_skips_locales_without_the_channel() -> None:
    assert pick_locale(make(), "pt-BR", channel=Channel.EMAIL) == "en"


# --- rendering ----------------------------------------------------------------------------


def test_render_in_app_reads_data_top_level_and_via_data_and_user() -> None:
    assert render(make(), Channel.IN_APP, data=DATA, user=USER) == {
        "title": "Order A-1001 shipped",
        "body": "FedEx has it, Ana",
        "action_url": "https://shop.test/orders/A-1001",
    }


def test_render_uses_the_users_locale_when_none_is_given() -> None:
    user = User(id="u_1", locale="pt_BR")
    assert render(make(), "in_app", data=DATA, user=user)["title"] == "Pedido A-1001 a caminho"


def test_render_explicit_locale_wins_over_the_users() -> None:
    rendered = render(make(), "in_app", data=DATA, user=USER, locale="pt")
    assert rendered["title"] == "Pedido A-1001 enviado"


def test_render_falls_back_to_default_locale_for_a_channel_the_locale_lacks() -> None:
    rendered = render(make(), "sms", data=DATA, user=USER, locale="pt-BR")
    assert rendered == {"body": "Order A-1001 shipped"}


def test_render_accepts_a_plain_user_dict() -> None:
    rendered = render(make(), "in_app", data=DATA, user={"id": "u_9", "name": "Bo"})
    assert rendered["body"] == "FedEx has it, Bo"


def test_email_html_is_autoescaped() -> None:
    rendered = render(make(), "email", data=DATA, user=USER)
    assert rendered["html"] == "<p>Hi Ana, &lt;b&gt;fragile&lt;/b&gt;</p>"


def test_email_text_and_subject_are_not_escaped() -> None:
    rendered = render(make(), "email", data=DATA, user=USER)
    assert rendered["text"] == "Hi Ana, <b>fragile</b>"
    assert rendered["subject"] == "Shipped: A-1001"


def test_in_app_text_is_not_escaped() -> None:
    template = with_part("in_app", "body", "{{ data.note }}")
    assert render(template, "in_app", data=DATA, user=USER)["body"] == "<b>fragile</b>"


def test_webhook_body_renders_string_leaves_and_keeps_the_rest() -> None:
    assert render(make(), "webhook", data=DATA, user=USER) == {
        "body": {
            "order": "A-1001",
            "items": ["FedEx", 3, None],
            "meta": {"who": "u_42", "ok": True},
        }
    }


def test_push_data_is_rendered_as_json() -> None:
    rendered = render(make(), "push", data=DATA, user=USER)
    assert rendered == {"title": "Shipped", "body": "A-1001", "data": {"id": "A-1001"}}


def test_missing_variable_is_a_render_error_naming_the_part() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(make(), "sms", data={}, user=USER)
    error = caught.value
    assert (error.locale, error.channel, error.part) == ("en", "sms", "body")
    assert "order_id" in error.message


def test_missing_variable_inside_webhook_json_names_the_json_path() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render(make(), "webhook", data={"order_id": "A"}, user=USER)
    assert caught.value.part == "body.items[0]"


def test_sandbox_refuses_dunder_attributes_without_leaking_them() -> None:
    template = with_part("sms", "body", "{{ ''.__class__.__mro__ }}")
    with pytest.raises(TemplateRenderError) as caught:
        render(template, "sms", data=DATA, user=USER)
    assert "not allowed" in caught.value.message
    assert "<class" not in str(caught.value)


def test_sandbox_refuses_mutating_the_data() -> None:
    template = with_part("sms", "body", "{{ data.update({'order_id': 'X'}) }}")
    with pytest.raises(TemplateRenderError, match="not allowed"):
        render(template, "sms", data=DATA, user=USER)


def test_sandbox_refuses_huge_string_repetition() -> None:
    template = with_part("sms", "body", "{{ 'x' * 1000000000 }}")
    with pytest.raises(TemplateRenderError, match="too long"):
        render(template, "sms", data=DATA, user=USER)


def test_sandbox_refuses_huge_powers() -> None:
    template = with_part("sms", "body", "{{ 10 ** 10000000 }}")
    with pytest.raises(TemplateRenderError, match="too large"):
        render(template, "sms", data=DATA, user=USER)


def test_a_template_runtime_error_is_a_render_error() -> None:
    template = with_part("sms", "body", "{{ 1 / 0 }}")
    with pytest.raises(TemplateRenderError, match=r"en\.sms\.body: division by zero"):
        render(template, "sms", data=DATA, user=USER)


# --- inline content -----------------------------------------------------------------------

CONTENT = {"title": "Shipped!", "body": "Order A-1001 is on its way", "action_url": "/o/A-1001"}


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("in_app", CONTENT),
        ("email", {"subject": "Shipped!", "text": "Order A-1001 is on its way"}),
        ("push", {"title": "Shipped!", "body": "Order A-1001 is on its way"}),
        ("sms", {"body": "Order A-1001 is on its way"}),
        ("webhook", {"body": CONTENT}),
    ],
)
def test_inline_content_derives_each_channel_from_title_and_body(
    channel: str, expected: dict[str, Any]
) -> None:
    assert render_content(CONTENT, channel) == expected


def test_inline_channel_override_wins_for_that_channel_only() -> None:
    content = {**CONTENT, "email": {"subject": "Your order", "html": "<p>hi</p>"}}
    assert render_content(content, "email") == {
        "subject": "Your order",
        "text": "Order A-1001 is on its way",
        "html": "<p>hi</p>",
    }
    assert render_content(content, "push")["title"] == "Shipped!"


def test_inline_sms_falls_back_to_the_title() -> None:
    assert render_content({"title": "Shipped!"}, "sms") == {"body": "Shipped!"}


def test_inline_content_is_literal_not_a_template() -> None:
    assert render_content({"body": "{{ order_id }}"}, "sms") == {"body": "{{ order_id }}"}


def test_inline_email_without_subject_or_title_is_a_render_error() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        render_content({"body": "hi"}, "email")
    assert (caught.value.locale, caught.value.channel, caught.value.part) == (
        None,
        "email",
        "subject",
    )


def test_inline_content_problems_name_unknown_keys_and_parts() -> None:
    content = {"title": 3, "fax": {}, "sms": {"title": "x"}}
    assert [str(p) for p in validate_content(content)] == [
        "content.title: must be a string",
        "content.fax: unknown key; expected title, body, action_url, data or a channel name",
        "content.sms.title: unknown part; sms has body",
    ]


def test_a_known_but_empty_field_renders_as_nothing():
    template = parse_template(
        "t",
        1,
        {
            "category": "c",
            "default_locale": "en",
            "locales": {"en": {"sms": {"body": "Hi {{ user.name }}!"}}},
        },
    )
    assert render(template, "sms", data={}, user={"id": "u", "name": None})["body"] == "Hi !"
