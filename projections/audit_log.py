"""What auditors read: the ordered event history with its chain links, a payment's history
as of a moment, and the verification of the chain against the stored events.

Events are read with the event store's own `select_notifications` (pages, streaming); the
chain's links come from the audit chain view and are matched by position.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.application import PaymentLedger
from ledger.audit import ChainWalk, Verdict, record
from ledger.settings import Settings
from projections.audit_chain import AuditChainView, open_view

PAGE = 1000
_END = 2**63  # beyond any position: an exhausted side of a merge


class AuditLog:
    def __init__(self, ledger: PaymentLedger, chain: AuditChainView) -> None:
        self.ledger = ledger
        self.chain = chain

    # --- history ---------------------------------------------------------------------

    def page(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` events after position `after`, in commit order, with their links
        (hash and prev_hash are None for events the chain has not reached yet)."""
        records = self._records(after, limit)
        links = self.chain.links_at([r["position"] for r in records])
        return [_with_link(r, links.get(r["position"])) for r in records]

    def stream(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Every event after `after`, a page at a time (memory stays flat)."""
        while True:
            items = self.page(after, PAGE)
            yield from items
            if len(items) < PAGE:
                return
            after = items[-1]["position"]

    def payment_history(self, payment_id: UUID, as_of: datetime) -> dict[str, Any]:
        """The payment's events with timestamp <= `as_of` and the state they produce, by
        the aggregate's own replay. Before its first event: no events and state None.

        Raises NotFoundError for an id that is not a payment.
        """
        self.ledger.get_payment(payment_id)
        records = []
        for item in self.chain.aggregate_records(payment_id):
            if not _at_or_before(item, as_of):
                break  # versions are in time order; later ones are after as_of too
            records.append(item)
        if not records:
            return {"events": [], "state": None}
        links = self.chain.links_at([r["position"] for r in records])
        state = self.ledger.get_payment(payment_id, version=records[-1]["version"]).state()
        return {
            "events": [_with_link(r, links.get(r["position"])) for r in records],
            "state": state,
        }

    # --- verification ----------------------------------------------------------------

    def verify(self) -> Verdict:
        """Recompute every chained event's hash from the stored event and compare.

        An event missing beside its link (deleted), an event without a link below the chain
        head (inserted), changed bytes or changed order → not ok at the first such position.
        Events after the chain's tracking position are not chained yet, which is not tampering.
        """
        upto = self.chain.chained_up_to()
        walk = ChainWalk()
        for position, item, link in _merge(self._records_upto(upto), self._links_upto(upto)):
            problem = _mismatch(item, link)
            if problem is None and item is not None and link is not None:
                problem = walk.check(item, link["prev_hash"], link["hash"])
            if problem:
                return walk.bad(position, problem)
        head = self.ledger.recorder.max_notification_id() or 0
        return walk.good(unchained=max(head - upto, 0))

    # --- reading in pages ------------------------------------------------------------

    def _records(self, after: int, limit: int, stop: int | None = None) -> list[dict[str, Any]]:
        notifications = self.ledger.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False
        )
        return [
            record(n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in notifications
        ]

    def _records_upto(self, upto: int) -> Iterator[dict[str, Any]]:
        after = 0
        while after < upto:
            page = self._records(after, PAGE, stop=upto)
            if not page:
                return
            yield from page
            after = page[-1]["position"]

    def _links_upto(self, upto: int) -> Iterator[dict[str, Any]]:
        after = 0
        while page := self.chain.links_after(after, PAGE, upto):
            yield from page
            after = int(page[-1]["position"])


def _with_link(item: dict[str, Any], link: dict[str, Any] | None) -> dict[str, Any]:
    return {
        **item,
        "hash": link["hash"] if link else None,
        "prev_hash": link["prev_hash"] if link else None,
    }


def _at_or_before(item: dict[str, Any], as_of: datetime) -> bool:
    try:
        return datetime.fromisoformat(item["timestamp"]) <= as_of
    except (TypeError, ValueError):
        return False


def _mismatch(item: dict[str, Any] | None, link: dict[str, Any] | None) -> str | None:
    if item is None:
        return "the chain links an event that is no longer stored (deleted?)"
    if link is None:
        return "a stored event that the chain never linked (inserted?)"
    if link["event_id"] != item["event_id"]:
        return "a different event is stored where the chain linked this one"
    return None


def _merge(
    items: Iterator[dict[str, Any]], links: Iterator[dict[str, Any]]
) -> Iterator[tuple[int, dict[str, Any] | None, dict[str, Any] | None]]:
    """Pair events and links by position; a position present on one side only pairs with None."""
    item, link = next(items, None), next(links, None)
    while item is not None or link is not None:
        ip = int(item["position"]) if item is not None else _END
        lp = int(link["position"]) if link is not None else _END
        position = min(ip, lp)
        yield position, item if ip == position else None, link if lp == position else None
        if ip == position:
            item = next(items, None)
        if lp == position:
            link = next(links, None)


@contextmanager
def opened(settings: Settings) -> Iterator[AuditLog]:
    """An AuditLog on its own connections, for the `ledger verify`/`export` commands."""
    ledger = PaymentLedger(env={**settings.eventsourcing_env(), "POSTGRES_POOL_SIZE": "1"})
    chain = open_view(settings)
    try:
        yield AuditLog(ledger, chain)
    finally:
        chain.datastore.close()  # type: ignore[attr-defined]
        ledger.close()
