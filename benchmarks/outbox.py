"""Outbox: payment completions told to trainers by e-mail, to a real local SMTP server.

The raw baseline, in the same run and to the same server: `smtplib` sending the same number
of comparable messages, one connection each, as the e-mail channel does. Then `ledger serve`
with LEDGER_SMTP_URL pointing there:
- throughput: a backlog of completions saved before the server starts, sent by its outbox
  worker; messages/s from the first e-mail received to the last (ratio to raw);
- lag: completions saved one by one while it runs; from each save's return to its e-mail's
  arrival, p50/p99.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from benchmarks.measure import summary_ms
from benchmarks.orders import order
from benchmarks.recorders import settings_for
from benchmarks.server import free_port, serve
from benchmarks.stores import Store
from benchmarks.webhooks import create_pending
from ledger.application import PaymentLedger
from ledger.message import Message
from ledger.payment import Payment
from store.contacts import TRAINER, ContactBook

# aiosmtpd logs every SMTP command at INFO: thousands of lines per run.
logging.getLogger("mail.log").setLevel(logging.WARNING)
PREFIX = "ob"
TRAINERS = 200  # benchmarks/orders.py spreads orders over 200 trainers
WAIT_SECONDS = 600.0


class Sink:
    """An SMTP server that notes when each message arrived, by its Message-ID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: dict[str, float] = {}
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                      server_hostname="sink.bench")  # fmt: skip

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message_id = str(BytesHeaderParser().parsebytes(content)["Message-ID"])
        with self._lock:
            self.arrived.setdefault(message_id, time.time())
        return "250 OK"

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.arrived) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.arrived)} of {count} e-mails after {WAIT_SECONDS}s")
            time.sleep(0.01)

    def __enter__(self) -> Sink:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


def run_outbox(store: Store, count: int) -> dict[str, Any]:
    with Sink() as sink:
        raw = _raw_baseline(sink, count)
        sink.arrived.clear()
        url = store.fresh("outbox")
        ledger = PaymentLedger(env=settings_for(url).eventsourcing_env())
        try:
            _reachable_trainers(ledger)
            sent = _drain_backlog(url, ledger, sink, count)
            lag = _lag(url, ledger, sink, max(count // 10, 20))
        finally:
            ledger.close()
    return {
        **raw,
        **sent,
        **lag,
        "ratio_to_raw": round(sent["messages_per_s"] / raw["raw_per_s"], 3),
    }


def _raw_baseline(sink: Sink, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    for n in range(count):
        mail = EmailMessage()
        mail["Message-ID"], mail["From"], mail["To"] = f"<raw-{n}@bench>", "a@bench", "b@bench"
        mail["Subject"] = "새 예약 결제: ₩150,000"
        mail.set_content("김민지님이 2026-12-03 세션을 ₩150,000 결제했습니다.")
        mail.add_alternative("<p>김민지님이 2026-12-03 세션을 ₩150,000 결제했습니다.</p>", "html")
        with smtplib.SMTP("127.0.0.1", sink.port, local_hostname="bench") as smtp:
            smtp.send_message(mail)
    seconds = time.perf_counter() - started
    return {"raw_messages": count, "raw_per_s": round(count / seconds, 1)}


def _reachable_trainers(ledger: PaymentLedger) -> None:
    contacts = ContactBook(ledger.recorder.datastore)  # type: ignore[attr-defined]
    contacts.create_tables()
    for n in range(TRAINERS):
        trainer = f"trainer-{n:03d}"
        contacts.put(TRAINER, trainer, f"{trainer}@bench.test", None, ("inbox", "email"), "ko")


def _complete(ledger: PaymentLedger, n: int) -> str:
    """Complete payment `n`; returns the Message-ID its trainer's e-mail will carry."""
    payment_id = Payment.create_id("stripe", order(PREFIX, n).order_id)
    ledger.complete(payment_id, f"pi_{n}", "card", datetime.now(UTC))
    # The completion is the payment's second event (Initiated is the first).
    message_id = Message.create_id(f"{payment_id}:2", "payment_completed", "trainer")
    return f"<{message_id}@localhost>"  # LEDGER_MAIL_FROM's default domain


def _drain_backlog(url: str, ledger: PaymentLedger, sink: Sink, count: int) -> dict[str, Any]:
    create_pending(ledger, 0, count, PREFIX)
    for n in range(count):
        _complete(ledger, n)
    with serve(url, env={"LEDGER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}"}):
        sink.wait_for(count)
    times = sorted(sink.arrived.values())
    seconds = times[-1] - times[0]
    return {"messages": count, "messages_per_s": round((count - 1) / seconds, 1) if seconds else 0}


def _lag(url: str, ledger: PaymentLedger, sink: Sink, count: int) -> dict[str, Any]:
    first = 1_000_000  # numbers apart from the backlog's
    create_pending(ledger, first, first + count, PREFIX)
    sink.arrived.clear()
    saved: dict[str, float] = {}
    with serve(url, env={"LEDGER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}"}):
        for n in range(first, first + count):
            saved[_complete(ledger, n)] = time.time()
            time.sleep(0.02)  # a steady trickle, not a backlog
        sink.wait_for(count)
    stats = summary_ms([sink.arrived[key] - at for key, at in saved.items()])
    return {"lag_samples": count, "lag_p50_ms": stats["p50_ms"], "lag_p99_ms": stats["p99_ms"]}
