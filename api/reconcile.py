"""Reconciliation: ask the providers about payments that have been pending too long.

A lost webhook, or a confirm whose answer never came back (Toss approved it, our call
timed out: the client saw 502), leaves a payment pending that the provider has settled.
`Reconciler.run` re-reads each such payment through its adapter's `reread`, which applies
the provider's answer under the same identities as that provider's webhooks, so the
webhook arriving later is a duplicate (or unchanged) and nothing is charged or counted
twice. This is also the automatic retry of a confirm: it asks, it never confirms again.

Counting: `pending_checked = resolved + still_pending`. A payment whose answer the ledger
refuses (another amount, another order) or whose provider could not be asked (unreachable,
not configured: code `provider_unavailable` / `provider_not_configured`) stays pending and
is also listed in `mismatches`, so an admin sees why it was not resolved. One payment's
failure never stops the run.

The loop runs in a daemon thread of the leader process (the one running projections): the
adapters, the store and the SDKs all block, and a thread keeps a slow provider away from
the event loop serving requests.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from api.deps import Services
from api.errors import ApiError
from api.providers.registry import ProviderRegistry
from ledger.application import PaymentLedger
from ledger.errors import LedgerError
from ledger.payment import Status
from ledger.reconciliation import record_run
from projections.runtime import ReadModels

log = logging.getLogger("ledger.reconcile")

PAGE = 200
# After a failed run (the store is down, say) the loop tries again after this, doubling
# while the failures go on, up to its interval: the projections supervisor's style.
RETRY_DELAY_SECONDS = 1.0
STOP_WAIT_SECONDS = 10.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`30s`, `10m`, `2h`, `1d`, or plain seconds."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 10m, 2h)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class ReconciliationReport:
    run_id: UUID
    checked_at: datetime
    older_than_seconds: float
    pending_checked: int
    resolved: int
    still_pending: int
    mismatches: list[dict[str, str]]
    position: int

    def as_dict(self) -> dict[str, Any]:
        """As `GET /api/admin/reconciliation` shows it (JSON-ready)."""
        return {
            "run_id": str(self.run_id),
            "checked_at": self.checked_at.isoformat(),
            "older_than_seconds": self.older_than_seconds,
            "pending_checked": self.pending_checked,
            "resolved": self.resolved,
            "still_pending": self.still_pending,
            "mismatches": self.mismatches,
            "position": self.position,
        }


@dataclass
class _Tally:
    resolved: int = 0
    still_pending: int = 0
    mismatches: list[dict[str, str]] = field(default_factory=list)

    def unresolved(self, row: dict[str, Any], code: str, message: str) -> None:
        self.still_pending += 1
        keys = ("payment_id", "order_id", "provider")
        self.mismatches.append({**{k: str(row[k]) for k in keys}, "code": code, "message": message})
        log.warning("reconcile %s %s: %s %s", row["provider"], row["order_id"], code, message)


class Reconciler:
    """Re-reads every payment pending since before a cutoff and records what it found."""

    def __init__(
        self, ledger: PaymentLedger, providers: ProviderRegistry, read_models: ReadModels
    ) -> None:
        self.ledger = ledger
        self.providers = providers
        self.read_models = read_models

    def run(self, older_than: timedelta, now: datetime | None = None) -> ReconciliationReport:
        """Check the payments pending since before `now - older_than` (the payments table
        finds them; each is checked again on its aggregate, the table may lag) and record
        the report as a `ReconciliationRun.Checked` event."""
        checked_at = now or datetime.now(UTC)
        cutoff = (checked_at - older_than).astimezone(UTC).isoformat()
        tally = _Tally()
        for row in self._pending(cutoff):
            self._check(row, tally)
        checked, seconds = tally.resolved + tally.still_pending, older_than.total_seconds()
        run_id, position = record_run(
            self.ledger,
            checked_at=checked_at,
            older_than_seconds=seconds,
            pending_checked=checked,
            resolved=tally.resolved,
            still_pending=tally.still_pending,
            mismatches=tally.mismatches,
        )
        log.info(
            "reconciled: %d checked, %d resolved, %d still pending, %d mismatches",
            checked, tally.resolved, tally.still_pending, len(tally.mismatches),
        )  # fmt: skip
        return ReconciliationReport(
            run_id, checked_at, seconds, checked, tally.resolved, tally.still_pending,
            tally.mismatches, position,
        )  # fmt: skip

    def _pending(self, cutoff: str) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            rows = self.read_models.payments_table.pending_before(cutoff, PAGE, after)
            yield from rows
            if len(rows) < PAGE:
                return
            after = rows[-1]["created_position"]

    def _check(self, row: dict[str, Any], tally: _Tally) -> None:
        try:
            payment = self.ledger.get_payment(UUID(row["payment_id"]))
            if payment.status != Status.PENDING:
                return  # settled since the table was written: nothing to ask
            provider = self.providers.find(payment.provider)
            if provider is None:
                message = f"no provider {payment.provider!r} is registered"
                raise LedgerError(message, "unknown_provider")
            status = provider.reread(payment).status
        except (LedgerError, ApiError) as error:
            tally.unresolved(row, error.code, error.message)
        except Exception as error:  # one payment's failure must not stop the run
            log.exception("reconciling payment %s failed", row["payment_id"])
            tally.unresolved(row, "internal_error", f"{type(error).__name__}: {error}")
        else:
            if status == Status.PENDING:
                tally.still_pending += 1
            else:
                tally.resolved += 1
                log.info("reconcile %s %s: now %s", row["provider"], row["order_id"], status)


class ReconcileLoop:
    """Calls `run` every `interval` seconds (the first time after one interval) in a
    daemon thread, until stopped; `interval <= 0` never starts it. A failed run is a log
    line and is tried again sooner (from RETRY_DELAY_SECONDS, doubling up to `interval`)."""

    def __init__(
        self,
        run: Callable[[], object],
        interval: float,
        first_retry: float = RETRY_DELAY_SECONDS,
    ) -> None:
        self._run, self.interval, self._first_retry = run, interval, first_retry
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)  # a run in progress finishes its payment

    def _loop(self) -> None:
        delay, retry = self.interval, self._first_retry
        while not self._stopping.wait(delay):
            try:
                self._run()
            except Exception as error:  # the loop must outlive provider and store outages
                delay, retry = min(retry, self.interval), retry * 2
                log.warning(
                    "reconciliation failed (%s: %s); next attempt in %.0f s",
                    type(error).__name__, str(error).strip()[:200], delay,
                )  # fmt: skip
            else:
                delay, retry = self.interval, self._first_retry


def reconcile_loop(services: Services) -> ReconcileLoop:
    """The leader's loop: every LEDGER_RECONCILE_SECONDS, the payments pending for
    LEDGER_RECONCILE_OLDER_THAN_SECONDS."""
    settings = services.settings
    reconciler = Reconciler(services.ledger, services.providers, services.read_models)
    older_than = timedelta(seconds=settings.reconcile_older_than_seconds)
    return ReconcileLoop(lambda: reconciler.run(older_than), settings.reconcile_seconds)
