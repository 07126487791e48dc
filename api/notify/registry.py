"""Which channels this deployment has: those whose settings are all present.

A channel left out entirely is absent (the outbox records `skipped: not_configured`); one
configured halfway is a mistake that fails at start-up, naming what is missing.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from api.notify.channels import Channel
from api.notify.email import EmailChannel
from api.notify.push import PushChannel
from api.notify.sms import SmsChannel
from ledger.settings import Settings


def configured_channels(
    settings: Settings, on_push_gone: Callable[[str], None] | None = None
) -> dict[str, Channel]:
    """Builds each configured channel; `on_push_gone(endpoint)` is told of expired push
    subscriptions (wire it to the contacts store's `remove_push_subscription`)."""
    timeout = settings.channel_timeout_seconds
    channels: dict[str, Channel] = {}
    smtp = _complete({"LEDGER_SMTP_URL": settings.smtp_url})
    if smtp:
        channels["email"] = EmailChannel(smtp["LEDGER_SMTP_URL"], settings.mail_from, timeout)
    twilio = _complete(
        {
            "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            "TWILIO_FROM": settings.twilio_from,
        }
    )
    if twilio:
        sid, token, sender = twilio.values()
        channels["sms"] = SmsChannel(sid, token, sender, settings.twilio_api_base, timeout)
    vapid = _complete(
        {
            "LEDGER_VAPID_PRIVATE_KEY": settings.vapid_private_key,
            "LEDGER_VAPID_SUBJECT": settings.vapid_subject,
        }
    )
    if vapid:
        key, subject = vapid.values()
        channels["push"] = PushChannel(key, subject, timeout, on_gone=on_push_gone)
    return channels


def _complete(values: dict[str, str | SecretStr | None]) -> dict[str, str]:
    """All set: their texts; none set: {}; some set: ValueError naming the others."""
    texts = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value or ""
        for name, value in values.items()
    }
    missing = [name for name, text in texts.items() if not text.strip()]
    if len(missing) == len(texts):
        return {}
    if missing:
        raise ValueError(f"set {', '.join(missing)} as well, or unset the channel's others")
    return texts
