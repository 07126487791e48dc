"""Which channels the settings configure: all, some, none, or a mistake."""

from __future__ import annotations

from typing import Any

import pytest

from api.notify.channels import Recipient, Rendered, Skipped
from api.notify.email import EmailChannel
from api.notify.push import PushChannel
from api.notify.registry import configured_channels
from api.notify.sms import SmsChannel
from ledger.settings import Settings
from tests.notify_servers import FakeTwilio, MailServer, PushService

# Explicitly unset, so a channel configured in the environment running the tests stays out.
UNSET: dict[str, Any] = {
    "smtp_url": None,
    "twilio_account_sid": None,
    "twilio_auth_token": None,
    "twilio_from": None,
    "vapid_private_key": None,
    "vapid_subject": None,
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **{**UNSET, **values})


def test_without_channel_settings_no_channel_is_configured() -> None:
    assert configured_channels(settings()) == {}


def test_each_fully_configured_channel_is_there(
    smtp_server: MailServer, twilio_server: FakeTwilio, push_server: PushService
) -> None:
    overrides = {
        **smtp_server.settings_overrides(),
        **twilio_server.settings_overrides(),
        **push_server.settings_overrides(),
    }

    channels = configured_channels(settings(**overrides))

    assert {name: type(channel) for name, channel in channels.items()} == {
        "email": EmailChannel,
        "sms": SmsChannel,
        "push": PushChannel,
    }
    assert all(name == channel.name for name, channel in channels.items())
    for channel in channels.values():
        channel.close()


def test_a_channel_without_settings_is_absent(smtp_server: MailServer) -> None:
    channels = configured_channels(settings(**smtp_server.settings_overrides()))

    assert list(channels) == ["email"]


def test_a_half_configured_channel_fails_naming_what_is_missing() -> None:
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN, TWILIO_FROM") as refused:
        configured_channels(settings(twilio_account_sid="AC123"))

    assert "AC123" not in str(refused.value)


def test_the_push_channel_reports_gone_subscriptions_to_on_push_gone(
    push_server: PushService,
) -> None:
    forgotten: list[str] = []
    channels = configured_channels(
        settings(**push_server.settings_overrides()), on_push_gone=forgotten.append
    )
    browser = push_server.subscribe()
    push_server.expire(browser)
    message = Rendered("m-1", "제목", "본문", "<p>본문</p>", "본문")

    with pytest.raises(Skipped):
        channels["push"].send(Recipient("trainer", "t-1", push=(browser,)), message)

    assert forgotten == [browser.endpoint]
