"""A real SMTP server (aiosmtpd) on a loopback port that keeps what it receives.

It requires AUTH (the `smtp://user:pass@…` of `url`), may require STARTTLS with a
self-signed certificate (`MailServer(tls=True)`, trusted by `client_tls`), and can refuse the
next messages (`refuse_next`), hold back its answer to one (`hold_next`) or be down
altogether (`stop()` … `start()`, same port).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.notify_servers.tls import self_signed


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage  # parsed with email.policy.default
    raw: bytes  # as it came over the wire (DATA)

    def header(self, name: str) -> str:
        return str(self.message[name])

    def part(self, subtype: str) -> str:
        """The decoded text of the `text/{subtype}` part."""
        body = self.message.get_body((subtype,))
        assert body is not None, f"no text/{subtype} part"
        return cast(str, body.get_content())


class MailServer:
    username = "ledger"
    password = "smtp-secret"

    def __init__(self, tls: bool = False) -> None:
        self.port = _free_port()
        self.received: list[ReceivedMail] = []
        self._refusals: deque[str] = deque()
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self._tls = self_signed() if tls else None
        self.holding = threading.Event()  # a held message was received, not yet answered
        self._hold = threading.Event()
        self._release = threading.Event()

    @property
    def url(self) -> str:
        query = "?starttls=true" if self._tls else ""
        return f"smtp://{self.username}:{self.password}@127.0.0.1:{self.port}{query}"

    @property
    def client_tls(self) -> ssl.SSLContext | None:
        """What a client trusts this server's certificate with (None without TLS)."""
        return self._tls[1] if self._tls else None

    def settings_overrides(self) -> dict[str, Any]:
        return {"smtp_url": self.url, "mail_from": "Ledger 알림 <ledger@ledger.test>"}

    def refuse_next(self, n: int, reply: str = "451 4.3.0 Try again later") -> None:
        """The next `n` messages are refused at RCPT with `reply` ("550 5.1.1 No such user")."""
        with self._lock:
            self._refusals.extend([reply] * n)

    def hold_next(self) -> None:
        """Keep the next message but hold back the answer to its DATA until `release()`: a
        client killed meanwhile sent it without learning so."""
        self._release.clear()
        self._hold.set()

    def release(self) -> None:
        self._release.set()

    def start(self) -> None:
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="smtp.ledger.test",  # skips aiosmtpd's getfqdn() look-up
            ready_timeout=30,
            authenticator=self._authenticate,
            auth_require_tls=self._tls is not None,  # AUTH required by handle_MAIL instead
            tls_context=self._tls[0] if self._tls else None,
            require_starttls=self._tls is not None,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # aiosmtpd handler hooks (called on the controller's event loop thread)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        # aiosmtpd's own auth_required warns on every connection when TLS is not required.
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        with self._lock:
            if self._refusals:
                return self._refusals.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        mail = ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message, content)
        with self._lock:
            self.received.append(mail)
        if self._hold.is_set():
            self._hold.clear()
            self.holding.set()
            while not self._release.is_set():  # the controller's loop: wait without blocking it
                await asyncio.sleep(0.01)
        return "250 2.0.0 Message accepted"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        expected = LoginPassword(self.username.encode(), self.password.encode())
        # handled=False: aiosmtpd itself answers 535 to a wrong password.
        return AuthResult(success=data == expected, handled=False)


def _free_port() -> int:
    # Chosen once, so stop() and start() again come back on the same port.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
