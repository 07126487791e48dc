"""A payment's statuses, its providers and the one table of which outcomes each status
accepts; kept apart from the aggregate so that projections share the same rules."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


class Provider(StrEnum):
    TOSS = "toss"
    STRIPE = "stripe"


# Which reported outcomes each status accepts. A failed attempt may be followed by a
# successful one (Stripe keeps a Checkout Session open after a declined card). A refunded
# charge can still be disputed (Stripe allows it). While a dispute is open the payment stays
# disputed; a refund the provider made before the dispute and reports only now is still
# recorded (its money moved), though no new refund may be asked for (api refunds: 409).
_ACCEPTS: dict[Status, frozenset[str]] = {
    Status.PENDING: frozenset({"completed", "failed", "cancelled"}),
    Status.FAILED: frozenset({"completed", "failed", "cancelled"}),
    Status.COMPLETED: frozenset({"refunded", "disputed", "reversed"}),
    Status.PARTIALLY_REFUNDED: frozenset({"refunded", "disputed"}),
    Status.CANCELLED: frozenset(),
    Status.REFUNDED: frozenset({"disputed"}),
    Status.DISPUTED: frozenset({"dispute_closed", "refunded"}),
}

# Statuses in which the provider holds the customer's money (or held it, all given back).
PAID_STATUSES = (
    Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED, Status.DISPUTED,
)  # fmt: skip


def accepts(status: Status, outcome: str) -> bool:
    return outcome in _ACCEPTS[status]


def status_after_refunds(refunded_amount: int, amount: int) -> Status:
    """Refunded once the refunds reach the amount, partially refunded before."""
    return Status.REFUNDED if refunded_amount >= amount else Status.PARTIALLY_REFUNDED


def paid_status(returned_amount: int, amount: int) -> Status:
    """The status of a paid payment with no open dispute, from the money returned to the
    customer (refunds and chargebacks): completed when none was."""
    if returned_amount <= 0:
        return Status.COMPLETED
    return status_after_refunds(returned_amount, amount)


def chargeback(disputed_amount: int, refundable_amount: int) -> int:
    """The money a lost dispute takes: never more than the customer still had paid."""
    return max(min(disputed_amount, refundable_amount), 0)
