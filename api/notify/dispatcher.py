"""The outbox worker: sends queued deliveries, at least once, and records every attempt.

It runs in the leader process (beside the projections and the webhook inbox), one lane
(thread) per channel, so a channel that hangs or fails never holds up another. A send is
recorded after it happened: a worker killed between the two sends that delivery again
after a restart, with the same message id (the e-mail's Message-ID), so a recipient sees
at most a duplicate that says so. A failed send is retried after LEDGER_OUTBOX_RETRY_SECONDS
(about 1 min, 5 min, 30 min, 2 h, 12 h), then `dead`; an admin's resend is one more
attempt, now. Nothing here is an event: contact details never enter the history.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from jinja2 import TemplateError

from api.notify.channels import (
    CHANNELS,
    Channel,
    PushSubscription,
    Recipient,
    SendFailed,
    Skipped,
)
from api.notify.texts import Texts
from store.outbox import Attempt, Outbox

log = logging.getLogger("ledger.outbox")

ROUND = 50
STOP_WAIT_SECONDS = 15.0


def _now() -> datetime:
    return datetime.now(UTC)


class Contact(Protocol):
    """What the worker reads of a contact (store/contacts.py)."""

    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def locale(self) -> str | None: ...
    @property
    def channels(self) -> tuple[str, ...] | None: ...  # None: every channel
    @property
    def push(self) -> Sequence[Any]: ...  # rows with endpoint, p256dh, auth


class Contacts(Protocol):
    def get(self, role: str, party_id: str) -> Contact | None: ...


class OutboxWorker:
    def __init__(
        self,
        outbox: Outbox,
        contacts: Contacts,
        channels: Mapping[str, Channel],
        texts: Texts,
        retry_seconds: Sequence[float] = (60.0, 300.0, 1800.0, 7200.0, 43200.0),
        max_age_seconds: float = 86400.0,
        poll_seconds: float = 1.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.outbox, self.contacts, self.channels, self.texts = outbox, contacts, channels, texts
        self.retry_seconds = tuple(retry_seconds)
        self.max_age = timedelta(seconds=max_age_seconds)
        self.poll_seconds = poll_seconds
        self._clock = clock
        self._wakeups = {name: threading.Event() for name in CHANNELS}
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        for wakeup in self._wakeups.values():
            wakeup.set()

    def start(self) -> None:
        if self._threads:
            return
        self._stopped.clear()
        for name in CHANNELS:
            thread = threading.Thread(target=self._run, args=(name,), name=f"outbox-{name}",
                                      daemon=True)  # fmt: skip
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopped.set()
        self.wake()
        for thread in self._threads:
            thread.join(STOP_WAIT_SECONDS)
        self._threads = []

    def send_due(self, channel: str) -> int:
        """Try the channel's deliveries due now, round after round; returns how many."""
        done = 0
        while not self._stopped.is_set():
            rows = self.outbox.due(channel, self._clock(), ROUND)
            self._send_round(rows)
            done += len(rows)
            if len(rows) < ROUND:
                break
        return done

    def _send_round(self, rows: list[dict[str, Any]]) -> None:
        """Each send is recorded as soon as it is made (a crash repeats one send at most);
        what sent nothing (skipped, say: every delivery of an unconfigured channel) is
        recorded together, in one transaction per round."""
        unsent: list[tuple[dict[str, Any], Attempt]] = []
        for row in rows:
            attempt = self.attempt(row)
            if attempt.sent_nothing:
                unsent.append((row, attempt))
            else:
                self.outbox.record(row, attempt, self._clock())
        if unsent:
            self.outbox.record_many(unsent, self._clock())

    def attempt(self, row: dict[str, Any]) -> Attempt:
        """Send one delivery (or decide there is nothing to send) and say how it went."""
        reason = self._skip_reason(row)
        if reason is not None:
            return Attempt("skipped", reason)
        contact = self.contacts.get(row["recipient_role"], row["recipient_id"])
        if contact is None:
            return Attempt("skipped", "no_contact")
        if contact.channels is not None and row["channel"] not in contact.channels:
            return Attempt("skipped", "not_chosen")
        try:
            rendered = self.texts.render(row["message_id"], row["kind"], contact.locale or "ko",
                                         _facts(row), row["booking_id"])  # fmt: skip
        except (TemplateError, KeyError, ValueError) as error:
            return Attempt("dead", f"template: {type(error).__name__}: {error}")
        return self._send(row, _recipient(row, contact), rendered)

    def _skip_reason(self, row: dict[str, Any]) -> str | None:
        if row["channel"] not in self.channels:
            return "not_configured"
        decided = datetime.fromisoformat(row["decided_at"])
        if int(row["attempts"]) == 0 and self._clock() - decided > self.max_age:
            return "stale"  # an old history fed again: not news to anyone
        return None

    def _send(self, row: dict[str, Any], recipient: Recipient, rendered: Any) -> Attempt:
        try:
            remote = self.channels[row["channel"]].send(recipient, rendered)
        except Skipped as skipped:
            return Attempt("skipped", skipped.reason)
        except SendFailed as failed:
            return self._failed(row, failed.reason, failed.permanent)
        except Exception as error:  # a channel's bug or an unexpected answer: try again
            log.exception("outbox %s %s", row["channel"], row["delivery_id"])
            return self._failed(row, f"{type(error).__name__}: {error}", permanent=False)
        return Attempt("sent", remote_id=remote)

    def _failed(self, row: dict[str, Any], reason: str, permanent: bool) -> Attempt:
        number = int(row["attempts"]) + 1
        if permanent or number > len(self.retry_seconds):
            return Attempt("dead", reason)
        delay = self.retry_seconds[number - 1]
        log.warning("outbox %s %s: %s; again in %.0f s",
                    row["channel"], row["delivery_id"], reason, delay)  # fmt: skip
        return Attempt("failed", reason, next_attempt_at=self._clock() + timedelta(seconds=delay))

    def _run(self, channel: str) -> None:
        wakeup, failures = self._wakeups[channel], 0
        while not self._stopped.is_set():
            wakeup.clear()  # before the round: a wake during it runs one more
            try:
                self.send_due(channel)
                failures, timeout = 0, self._until_next(channel)
            except Exception as error:  # the store is away, say: back off, keep running
                failures += 1
                timeout = min(self.poll_seconds * 2**failures, 30.0)
                log.warning("outbox %s round failed (%s: %s); again in %.0f s",
                            channel, type(error).__name__, error, timeout)  # fmt: skip
            wakeup.wait(timeout)

    def _until_next(self, channel: str) -> float:
        due = self.outbox.next_due_at(channel)
        if due is None:
            return self.poll_seconds
        return max(0.0, min((due - self._clock()).total_seconds(), self.poll_seconds))


def _facts(row: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = json.loads(row["facts"])
    return facts


def _recipient(row: dict[str, Any], contact: Contact) -> Recipient:
    return Recipient(
        role=row["recipient_role"],
        party_id=row["recipient_id"],
        email=contact.email,
        phone=contact.phone,
        locale=contact.locale or "ko",
        push=tuple(PushSubscription(p.endpoint, p.p256dh, p.auth) for p in contact.push),
    )
