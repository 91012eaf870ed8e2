"""Which settings the scaled-out roles accept, and how `--channels` is read."""

from __future__ import annotations

import pytest

from tidings.config import Settings, replace
from tidings.domain.models import Channel
from tidings.roles import bus_options, check_scaled_out, parse_channels, queue_options

SCALED = Settings(
    database_url="postgresql://db/tidings",
    queue_url="amqp://guest:guest@mq/",
    bus_url="redis://cache:6379/0",
)


def test_postgresql_rabbitmq_and_redis_run_scaled_out():
    check_scaled_out(SCALED, "api")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"database_url": "sqlite:///tidings.db"}, "TIDINGS_DATABASE_URL"),
        ({"queue_url": ""}, "TIDINGS_QUEUE_URL"),
        ({"queue_url": "memory://"}, "TIDINGS_QUEUE_URL"),
        ({"queue_url": "sqlite:///tidings.db"}, "TIDINGS_QUEUE_URL"),
        ({"bus_url": "memory://"}, "TIDINGS_BUS_URL"),
    ],
)
def test_a_process_local_backend_is_refused_naming_its_setting(changes, named):
    settings = replace(SCALED, **changes)
    with pytest.raises(ValueError, match=named) as refused:
        check_scaled_out(settings, "worker")
    assert "tidings serve" in str(refused.value)


def test_the_embedded_defaults_are_refused_with_every_reason():
    with pytest.raises(ValueError) as refused:
        check_scaled_out(Settings(), "api")
    for name in ("TIDINGS_DATABASE_URL", "TIDINGS_QUEUE_URL", "TIDINGS_BUS_URL"):
        assert name in str(refused.value)


def test_channels_are_read_from_a_comma_separated_list():
    assert parse_channels("email, push") == {Channel.EMAIL, Channel.PUSH}


@pytest.mark.parametrize("text", ["fax", "", "email,,fax"])
def test_an_unknown_or_empty_channel_list_is_refused(text):
    with pytest.raises(ValueError, match="email, push, sms, webhook"):
        parse_channels(text)


def test_in_app_is_not_a_worker_channel_because_routing_delivers_it():
    with pytest.raises(ValueError, match="routing delivers it"):
        parse_channels("email,in_app")


def test_the_namespace_names_rabbitmq_queues_and_redis_channels():
    settings = replace(SCALED, namespace="acme")
    assert queue_options(settings) == {"prefix": "acme"}
    assert bus_options(settings) == {"namespace": "acme:", "client_name": "acme-bus"}
    assert queue_options(Settings()) == {} and bus_options(Settings()) == {}
