"""The one interface every payment provider's adapter implements, and what they share.

A provider is one module with a class satisfying `PaymentProvider`, plus its registration in
the composition root (`api/app.py` `BUILT_IN_PROVIDERS`, or `create_app(extra_providers=...)`);
see the README, "How to add a provider".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, runtime_checkable

from api.providers.webhooks import WebhookOutcome
from ledger.application import CommandResult, PaymentLedger, PaymentOrder
from ledger.payment import Payment

# The provider has accepted the refund but not given the money back yet: counted on success.
PENDING_REFUND = ("pending", "requires_action")


@dataclass(frozen=True)
class WebhookRequest:
    """One delivery as it arrived: the exact bytes (signatures cover these) and the headers
    (case-insensitive, as Starlette gives them)."""

    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Accepted:
    """A delivery that passed its provider's synchronous checks, by the provider's own id
    of it (Stripe's event id; Toss's transmission id, else the body's hash)."""

    event_id: str
    event_type: str | None


@dataclass(frozen=True)
class RefundResult:
    """What became of the refund the provider made: `recorded` once the ledger counts it
    under `refund_id`; else pending at the provider, or `problem` says why it is not."""

    refund_id: str
    amount: int
    refund_status: str  # the provider's word: succeeded, pending, failed ...
    status: str  # the payment's, after the refund
    position: int | None
    recorded: bool
    problem: str | None = None


@dataclass(frozen=True)
class SettlementLine:
    """One payment or refund in a provider's settlement report, with the fee it kept.
    `line_id` is the report's own id of the line (Toss's transactionKey, Stripe's balance
    transaction id): a fee is recorded once per line; empty, the payment id stands in."""

    provider_payment_id: str
    order_id: str | None
    amount: int
    fee: int
    currency: str
    settled_on: date
    line_id: str = ""


class PaymentProvider(Protocol):
    """A payment provider, as the ledger's routes, refunds and reconciliation use it.

    Confirming a checkout is provider-shaped (Toss: paymentKey/orderId/amount; Stripe: a
    Checkout Session id), so each adapter keeps its own `confirm` and its checkout route
    reaches it through `ProviderRegistry.adapter`.
    """

    @property
    def name(self) -> str:
        """The provider's name as stored on payments (`Payment.provider`) and in URLs."""
        ...

    @property
    def checks_offline(self) -> bool:
        """True: `accept` reads nothing but the delivery (a signature), so the webhook route
        runs it on the event loop; False: it reads the store or the provider (in a thread)."""
        ...

    def check_order(self, order: PaymentOrder) -> None:
        """Refuse (ApiError 422) an order this provider cannot take, before it is stored."""
        ...

    def accept(self, request: WebhookRequest) -> Accepted:
        """The synchronous checks of one delivery (signature, shape, a known order, a
        deposit's secret): raise ApiError or LedgerError to refuse it. An accepted delivery
        is stored in the webhook inbox and answered; `apply_verified` applies it later."""
        ...

    def apply_verified(self, body: bytes) -> WebhookOutcome:
        """Apply a delivery accepted before (from the inbox, or a parked one released when
        its order is initiated): not verified again, since it may be older than any
        signature tolerance, and exactly once, under its receipt."""
        ...

    def refund(self, payment: Payment, amount: int | None, reason: str, key: str) -> RefundResult:
        """Ask the provider to return `amount` (None: all that is left) under idempotency
        `key`, and record every refund it reports."""
        ...

    def reread(self, payment: Payment) -> CommandResult:
        """Read the payment from the provider and apply its answer (reconciliation), under
        the same exactly-once identities as the provider's webhooks."""
        ...

    def settlements(self, start: date, end: date) -> list[SettlementLine] | None:
        """The provider's settlement lines of those days; None: this adapter does not read
        settlement reports (yet)."""
        ...

    def close(self) -> None:
        """Release connections; called once when the app stops."""
        ...


@runtime_checkable
class Prefetching(Protocol):
    """What a `PaymentProvider` may add (optional: Stripe needs none) to read ahead, at once,
    what applying an inbox round will ask its API, instead of one call after another."""

    def prefetched(self, bodies: Sequence[bytes]) -> AbstractContextManager[None]:
        """Within the block, `apply_verified` of these deliveries, on the calling thread, may
        use answers read on entry; forgotten on exit. Reading ahead never raises: a read that
        failed is not kept, so the in-order call meets the real error."""
        ...


def prefetched(provider: PaymentProvider, bodies: Sequence[bytes]) -> AbstractContextManager[None]:
    """The provider's read-ahead of one inbox round, or nothing for one without."""
    if isinstance(provider, Prefetching):
        return provider.prefetched(bodies)
    return nullcontext()


def refund_outcome(
    ledger: PaymentLedger,
    result: CommandResult,
    refund_id: str,
    amount: int,
    status: str,
    note: str = "",
) -> RefundResult:
    """Whether the ledger now counts the provider's refund `refund_id`: recorded now, or
    before (a replayed key, the webhook, a concurrent request)."""
    payment = ledger.get_payment(result.payment_id)
    recorded = refund_id in payment.refund_ids
    problem = None
    if not recorded and status not in PENDING_REFUND:
        counted = f"{payment.refunded_amount} of {payment.amount} {payment.currency}"
        problem = (
            f"{payment.provider} made refund {refund_id} of {amount} ({status}), but the "
            f"ledger recorded nothing for it: it counts {counted} as refunded"
            + (f"; {note}" if note else "")
        )
    return RefundResult(
        refund_id, amount, status, payment.status, result.position, recorded, problem
    )


def header(request: WebhookRequest, name: str) -> str | None:
    """A header of the delivery, whatever mapping carried it."""
    value: Any = request.headers.get(name)
    if value is None:
        value = request.headers.get(name.lower())
    return str(value) if value is not None else None
