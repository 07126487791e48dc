"""PaymentLedger: the commands that checkout flows and provider deliveries call."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Transcoder

from ledger.commands import Approval, CommandResult, Delivery, PaymentOrder, RefundReport
from ledger.delivery import ProviderDelivery
from ledger.errors import ConflictError, NotFoundError
from ledger.notification import TrainerNotification
from ledger.order import OrderClaim
from ledger.payment import Payment, Provider
from ledger.reactions import approve, reactions, refunds_to_record
from ledger.transcoding import AnyTextJSONTranscoder
from ledger.unit_of_work import BatchingApplication, UnitOfWork

# The values commands take and give back, importable from here as they always were.
__all__ = [
    "Approval",
    "CommandResult",
    "Delivery",
    "PaymentLedger",
    "PaymentOrder",
    "RefundReport",
    "refunds_to_record",
]

log = logging.getLogger("ledger")

# Concurrent commands on one payment collide on its version; reload and decide again,
# after a short random pause so that the colliding writers spread out.
MAX_ATTEMPTS = 30


class PaymentLedger(BatchingApplication):
    """Event-sourced ledger of payments, deliveries and trainer notifications."""

    name = "PaymentLedger"

    def construct_transcoder(self) -> Transcoder:
        transcoder = AnyTextJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def initiate(self, order: PaymentOrder) -> CommandResult:
        """Start a payment; repeating the same order returns the same payment."""
        payment_id = Payment.create_id(order.provider, order.order_id)
        for _ in range(2):
            existing = self._find(payment_id)
            if existing is not None:
                return self._same_order(existing, order)
            self._refuse_other_provider(order)
            payment = Payment(**asdict(order))
            try:
                recordings = self.save(payment, OrderClaim.of(payment))
            except IntegrityError:
                continue  # a concurrent request for the order won: identical, or the other provider
            return CommandResult(
                payment.id, payment.status, "created", recordings[-1].notification.id
            )
        raise ConflictError(f"order {order.order_id} is being created concurrently")

    def _refuse_other_provider(self, order: PaymentOrder) -> None:
        # The claim saved with each payment decides races; this read also covers orders
        # stored before claims existed, which have none.
        for other in Provider:
            if (
                other != order.provider
                and Payment.create_id(other, order.order_id) in self.repository
            ):
                raise ConflictError(f"order {order.order_id} is already paid through {other}")

    def complete(
        self,
        payment_id: UUID,
        provider_payment_id: str,
        method: str,
        approved_at: datetime,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
        captured_amount: int | None = None,
        discrepancy_reason: str = "amount differs",
    ) -> CommandResult:
        """Record that the provider took the money; with `captured_amount` other than the
        order's, an amount discrepancy is recorded first and the payment counts that."""
        return self._change(
            payment_id,
            lambda p: p.complete(
                provider_payment_id, method, approved_at, captured_amount, discrepancy_reason
            ),
            delivery,
            loaded,
        )

    def fail(
        self,
        payment_id: UUID,
        code: str,
        message: str,
        failed_at: datetime | None = None,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Record a declined or aborted payment attempt."""
        at = failed_at or _now()
        return self._change(payment_id, lambda p: p.fail(code, message, at), delivery, loaded)

    def cancel(
        self,
        payment_id: UUID,
        reason: str,
        cancelled_at: datetime | None = None,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Record that the payment was cancelled or expired before being paid."""
        at = cancelled_at or _now()
        return self._change(payment_id, lambda p: p.cancel(reason, at), delivery, loaded)

    def refund(
        self,
        payment_id: UUID,
        refund_id: str,
        amount: int,
        reason: str,
        refunded_at: datetime | None = None,
        delivery: Delivery | None = None,
    ) -> CommandResult:
        """Record money returned to the customer (partial or full)."""
        at = refunded_at or _now()
        return self._change(payment_id, lambda p: p.refund(refund_id, amount, reason, at), delivery)

    def record_refunds(
        self,
        payment_id: UUID,
        refunds: Sequence[RefundReport],
        approval: Approval | None = None,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Record every refund of a provider report not recorded yet, in one save with the
        delivery receipt. With `approval`, an unpaid payment is completed first: the
        provider refunded money, so it had taken it."""

        def decide(payment: Payment) -> bool:
            changed = approve(payment, approval)
            for r in refunds:
                changed = payment.refund(r.refund_id, r.amount, r.reason, r.refunded_at) or changed
            return changed

        return self._change(payment_id, decide, delivery, loaded)

    def record_listed_refunds(
        self,
        payment_id: UUID,
        listed: Sequence[RefundReport],
        approval: Approval | None = None,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Record, each under its own id, the provider's succeeded refunds (all of them,
        oldest first, e.g. Stripe's refunds list) that the ledger has not counted yet; see
        `refunds_to_record`. Decided on the current state, so a refund recorded by any path
        (webhook, admin request, a concurrent request) counts once."""

        def decide(payment: Payment) -> bool:
            changed = approve(payment, approval)
            for r in refunds_to_record(payment, listed):
                changed = payment.refund(r.refund_id, r.amount, r.reason, r.refunded_at) or changed
            return changed

        return self._change(payment_id, decide, delivery, loaded)

    def await_deposit(
        self,
        payment_id: UUID,
        provider_payment_id: str,
        secret: str,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
        reason: str = "deposit error",
        reversed_at: datetime | None = None,
    ) -> CommandResult:
        """Record a virtual account issued by Toss and the secret its deposit callback carries.
        A completed payment is reversed first (Toss: DONE → WAITING_FOR_DEPOSIT after a
        deposit error) and its trainer told; a refunded one is refused (TransitionRejected)."""
        at = reversed_at or _now()
        return self._change(
            payment_id,
            lambda p: p.await_deposit(provider_payment_id, secret, reason, at),
            delivery,
            loaded,
        )

    def fail_refund(
        self,
        payment_id: UUID,
        refund_id: str,
        reason: str,
        failed_at: datetime | None = None,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Undo a recorded refund that the provider reports failed (Stripe
        `charge.refund.updated`, status failed); an unknown or already failed one is unchanged."""
        at = failed_at or _now()
        return self._change(
            payment_id, lambda p: p.fail_refund(refund_id, reason, at), delivery, loaded
        )

    def open_dispute(
        self,
        payment_id: UUID,
        dispute_id: str,
        amount: int,
        reason: str,
        opened_at: datetime | None = None,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Record a chargeback opened by the customer's bank: the payment is `disputed`
        (refunds refused) until the dispute closes."""
        at = opened_at or _now()
        return self._change(
            payment_id, lambda p: p.open_dispute(dispute_id, amount, reason, at), delivery, loaded
        )

    def close_dispute(
        self,
        payment_id: UUID,
        dispute_id: str,
        outcome: str,
        amount: int,
        closed_at: datetime | None = None,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Record a dispute's end: `won`/`warning_closed` → the status before it; `lost` →
        a chargeback of `amount`. An unknown or already closed dispute is unchanged."""
        at = closed_at or _now()
        return self._change(
            payment_id,
            lambda p: p.close_dispute(dispute_id, outcome, amount, at),
            delivery,
            loaded,
        )

    def record_unrepresentable(
        self,
        payment_id: UUID,
        attempted: str,
        reason: str,
        delivery: Delivery | None = None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Record a provider report the ledger cannot represent (a paid Stripe session in a
        currency neither the order's nor converted from it) as a TransitionRejected: no money
        or status changes, auditors and admins see it, and the provider is not made to retry."""
        return self._change(payment_id, lambda p: p.refuse(attempted, reason), delivery, loaded)

    def mark_notification_read(self, notification_id: UUID, trainer_id: str) -> int | None:
        """Mark a trainer's notification read; returns the position, or None if it already was."""
        try:
            notification: TrainerNotification = self.repository.get(notification_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"notification {notification_id} not found") from None
        if (
            not isinstance(notification, TrainerNotification)
            or notification.trainer_id != trainer_id
        ):
            # Same answer as a missing one: do not reveal other trainers' notifications.
            raise NotFoundError(f"notification {notification_id} not found")
        if not notification.mark_read(_now()):
            return None
        try:
            return self.save(notification)[-1].notification.id
        except IntegrityError:
            return None  # a concurrent request marked it read first

    # --- queries by id (listing belongs to projections) ----------------------------

    def get_payment(self, payment_id: UUID, version: int | None = None) -> Payment:
        """The payment (at `version`); inside a batch, the batch's copy of it."""
        work = self._work() if version is None else None
        if work is not None and payment_id in work.payments:
            cached: Payment = work.payments[payment_id]
            return cached
        try:
            payment: Payment = self.repository.get(payment_id, version=version)
        except AggregateNotFoundError:
            raise NotFoundError(f"payment {payment_id} not found") from None
        if not isinstance(payment, Payment):
            raise NotFoundError(f"payment {payment_id} not found")
        if work is not None:
            work.payments[payment_id] = payment
        return payment

    def find_payment(self, provider: str, order_id: str) -> Payment:
        """The payment of an order, by its deterministic id: no lookup table needed."""
        try:
            return self.get_payment(Payment.create_id(provider, order_id))
        except NotFoundError:
            raise NotFoundError(f"unknown order {order_id}", code="unknown_order") from None

    def has_delivery(self, provider: str, event_key: str) -> bool:
        receipt = ProviderDelivery.create_id(provider, event_key)
        work = self._work()
        return (work is not None and receipt in work.receipts) or receipt in self.repository

    # --- internals -----------------------------------------------------------------

    def _find(self, payment_id: UUID) -> Payment | None:
        try:
            return self.get_payment(payment_id)
        except NotFoundError:
            return None

    @staticmethod
    def _same_order(existing: Payment, order: PaymentOrder) -> CommandResult:
        # The order's amount, even when the provider captured another (a discrepancy).
        stored = {k: getattr(existing, k) for k in asdict(order)} | {
            "amount": existing.ordered_amount
        }
        if stored != asdict(order):
            raise ConflictError(f"order {order.order_id} exists with different details")
        return CommandResult(existing.id, existing.status, "unchanged")

    def _change(
        self,
        payment_id: UUID,
        decide: Callable[[Payment], bool],
        delivery: Delivery | None,
        loaded: Payment | None = None,
    ) -> CommandResult:
        """Load (or take the caller's `loaded` copy), decide, save with the delivery's
        receipt; on a collision reload and decide again.

        Commands with `loaded` are the common path of a webhook: its adapter has just
        read the payment to check the amount, so one read and one save make a delivery.
        The receipt's unique id decides atomically whether a delivery is new, so it is
        looked up only when nothing would be saved or when a save collided.
        """
        work = self._work()
        if work is not None:
            return self._change_in_batch(work, payment_id, decide, delivery)
        for attempt in range(MAX_ATTEMPTS):
            if attempt == 0 and loaded is not None and loaded.id == payment_id:
                payment = loaded
            else:
                payment = self.get_payment(payment_id)
            if attempt > 0 and delivery and self._seen(delivery):
                return CommandResult(payment.id, payment.status, "duplicate")
            if not decide(payment):
                outcome = "duplicate" if delivery and self._seen(delivery) else "unchanged"
                return CommandResult(payment.id, payment.status, outcome)
            related: list[Any] = reactions(payment)
            if delivery:
                related.append(ProviderDelivery(payment_id=payment.id, **asdict(delivery)))
            try:
                recordings = self.save(payment, *related)
            except IntegrityError:
                # Another writer changed this payment, or this delivery was applied.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            return CommandResult(
                payment.id, payment.status, "applied", recordings[-1].notification.id
            )
        raise ConflictError(f"payment {payment_id} is changing too fast; retry")

    def _change_in_batch(
        self,
        work: UnitOfWork,
        payment_id: UUID,
        decide: Callable[[Payment], bool],
        delivery: Delivery | None,
    ) -> CommandResult:
        """Decide against the batch's copy; the events wait for the batch's save (whose
        collision on a receipt, or on a version, is the duplicate check)."""
        payment = self.get_payment(payment_id)
        receipt = ProviderDelivery.create_id(**asdict(delivery)) if delivery else None
        if receipt in work.receipts:
            return CommandResult(payment.id, payment.status, "duplicate")
        before = len(payment.pending_events)
        if not decide(payment):
            outcome = "duplicate" if delivery and self._seen(delivery) else "unchanged"
            return CommandResult(payment.id, payment.status, outcome)
        new = payment.pending_events[before:]
        related: list[Any] = reactions(payment, new)
        if delivery:
            related.append(ProviderDelivery(payment_id=payment.id, **asdict(delivery)))
        work.add(new, related, receipt)
        return CommandResult(payment.id, payment.status, "applied")

    def _seen(self, delivery: Delivery) -> bool:
        return self.has_delivery(delivery.provider, delivery.event_key)


def _now() -> datetime:
    return datetime.now(UTC)
