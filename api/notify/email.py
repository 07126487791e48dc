"""E-mail over SMTP (CONTRACT.md "Telling people"): one connection per message.

`LEDGER_SMTP_URL` is `smtp://user:pass@host:port`, with `?starttls=true` to upgrade the
connection before logging in, or `smtps://…` for implicit TLS (port 465). The send runs in
the outbox's worker thread, so the blocking `smtplib` is the right tool.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from api.notify.channels import Recipient, Rendered, SendFailed, Skipped

_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_TRUE = frozenset({"1", "true", "yes", "on"})
# Bodies go out base64 / quoted-printable rather than raw 8-bit, so a relay without
# 8BITMIME carries Korean text intact; headers stay RFC 2047 as with the default policy.
_POLICY = email.policy.default.clone(cte_type="7bit")


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect, parsed from `LEDGER_SMTP_URL`."""

    host: str
    port: int
    username: str | None
    password: str | None
    security: Literal["plain", "starttls", "tls"]

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            # The URL holds a password: never echo it.
            raise ValueError("LEDGER_SMTP_URL must be smtp://user:pass@host:port or smtps://…")
        starttls = parse_qs(parts.query).get("starttls", [""])[-1].lower() in _TRUE
        security: Literal["plain", "starttls", "tls"] = (
            "tls" if parts.scheme == "smtps" else "starttls" if starttls else "plain"
        )
        port = parts.port or (587 if starttls else _DEFAULT_PORTS[parts.scheme])
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(parts.hostname, port, username, password, security)


class EmailChannel:
    """Sends `Rendered` as multipart/alternative (text + HTML) with a stable Message-ID."""

    name = "email"

    def __init__(
        self,
        smtp_url: str,
        mail_from: str,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._target = SmtpTarget.from_url(smtp_url)
        self._from = mail_from
        self._sender = parseaddr(mail_from)[1] or mail_from
        self._domain = self._sender.rpartition("@")[2] or "localhost"
        self._timeout = timeout
        self._tls = ssl_context or ssl.create_default_context()

    def close(self) -> None:
        return  # nothing held between messages

    def send(self, recipient: Recipient, message: Rendered) -> str | None:
        """Returns the Message-ID, which a resend of the same message repeats."""
        if not recipient.email:
            raise Skipped("no_contact")
        mail = self.compose(recipient.email, message)
        try:
            smtp = self._connect()
            try:
                smtp.send_message(mail, from_addr=self._sender, to_addrs=[recipient.email])
            finally:
                _quit(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            raise _failure(exc) from exc
        return str(mail["Message-ID"])

    def compose(self, to: str, message: Rendered) -> EmailMessage:
        mail = EmailMessage(policy=_POLICY)
        # Derived from the message id only, so a resend after a crash is recognisably the same.
        mail["Message-ID"] = f"<{message.message_id}@{self._domain}>"
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["From"] = self._from
        mail["To"] = to
        mail["Subject"] = message.subject
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    def _connect(self) -> smtplib.SMTP:
        target = self._target
        # EHLO with the sender's domain: smtplib's default is a DNS look-up per connection.
        if target.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                target.host,
                target.port,
                local_hostname=self._domain,
                timeout=self._timeout,
                context=self._tls,
            )
        else:
            smtp = smtplib.SMTP(
                target.host, target.port, local_hostname=self._domain, timeout=self._timeout
            )
        try:
            if target.security == "starttls":
                smtp.starttls(context=self._tls)
            if target.username:
                smtp.login(target.username, target.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()  # the message was accepted (or refused) already: a failed goodbye is no news


def _failure(exc: smtplib.SMTPException | OSError) -> SendFailed:
    """5xx about this recipient or this message is permanent; everything else may pass later."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return SendFailed(f"smtp {code} {_text(reply)}", permanent=code >= 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        # DATA refused is about this message. Sender, AUTH or HELO refused is our configuration
        # or the server's, not this message's: retried, so it goes out once an operator fixes it.
        about_message = isinstance(exc, smtplib.SMTPDataError)
        reason = f"smtp {exc.smtp_code} {_text(exc.smtp_error)}"
        return SendFailed(reason, permanent=about_message and exc.smtp_code >= 500)
    return SendFailed(f"smtp unreachable: {type(exc).__name__}: {exc}")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
