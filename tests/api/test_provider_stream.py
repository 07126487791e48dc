"""A randomised stream of genuine Stripe and Toss deliveries — completions, partial and full
refunds, refunds that fail later, disputes won and lost, duplicates, any order — leaves every
payment in the state the provider holds.

The fake providers are the truth: each payment is moved there first (as a customer, the
provider's dashboard or an admin would), then every delivery that change caused is sent in a
shuffled order, some of them twice. The seeds are fixed, so a failure names its stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from tests.api.test_checkout import payment_body
from tests.api.test_webhooks_stripe import deliver_raw, refund_event
from tests.api.test_webhooks_toss import post as post_toss
from tests.fake_providers import FakeProviders
from tests.inbox import result

ADMIN = {"Authorization": "Bearer admin-token"}
PAYMENTS_PER_STREAM = 16


@dataclass
class Stream:
    """The deliveries to send, and how to read each payment's truth from the fake."""

    fake: FakeProviders
    rng: random.Random
    client: TestClient
    pending: list[tuple[str, Any]] = field(default_factory=list)  # caused, not yet sent
    sent: list[tuple[str, Any]] = field(default_factory=list)
    truths: dict[str, Any] = field(default_factory=dict)  # order id → () -> (status, refunded)

    def toss(self, n: int, client: TestClient) -> None:
        key, order, amount = f"tpk_s{n}", f"st-toss-{n}", self.rng.randrange(1, 50) * 1000
        client.post("/api/payments", json=payment_body(order_id=order, amount=amount))
        self.fake.toss_payment(key, order, amount, status="DONE")
        self._toss_delivery(key)
        cancels: list[dict[str, Any]] = []
        for _ in range(self.rng.choice([0, 0, 1, 2])):
            left = self.fake.toss_get(key)["balanceAmount"]
            steps = left // 1000  # amounts are whole thousands of won
            full = steps <= 1 or self.rng.random() < 0.4
            part = left if full else self.rng.randrange(1, steps) * 1000
            cancels = [*cancels, {"cancelAmount": part}]
            status = "CANCELED" if part == left else "PARTIAL_CANCELED"
            cancels = self.fake.toss_set_status(key, status, cancels=cancels)["cancels"]
            self._toss_delivery(key)
            if status == "CANCELED":
                break
        self.truths[order] = lambda: toss_truth(self.fake.toss_get(key))

    def virtual_account(self, n: int, client: TestClient) -> None:
        """A Toss virtual account: issued at confirm, deposited, maybe a deposit error (the
        bank takes it back: Toss goes DONE → WAITING_FOR_DEPOSIT), maybe deposited again."""
        key, order, amount = f"tpk_v{n}", f"st-va-{n}", self.rng.randrange(1, 50) * 1000
        secret = f"ps_secret_{n}"
        client.post("/api/payments", json=payment_body(order_id=order, amount=amount))
        self.fake.toss_virtual_account_next_confirm(secret)
        confirm = {"paymentKey": key, "orderId": order, "amount": amount}
        assert client.post("/api/payments/toss/confirm", json=confirm).status_code == 200
        for status in ["DONE", "WAITING_FOR_DEPOSIT", "DONE"][: self.rng.choice([1, 2, 2, 3])]:
            self.fake.toss_set_status(key, status)
            self._toss_delivery(key)
            if status == "DONE":
                callback = self.fake.toss_deposit_callback_body(key, secret)
                self.queue(("toss", callback))
        self.truths[order] = lambda: toss_truth(self.fake.toss_get(key))

    def _toss_delivery(self, key: str) -> None:
        self.queue(("toss", self.fake.toss_webhook_body(key)))

    def stripe(self, n: int, client: TestClient) -> None:
        order, amount = f"st-stripe-{n}", self.rng.randrange(100, 9000)
        body = payment_body(order_id=order, amount=amount, currency="USD", provider="stripe")
        pi = f"pi_s{n}"
        paid = self.fake.stripe_session(f"cs_s{n}", order, amount, "usd", payment_intent=pi)
        if self.rng.random() < 0.3:
            # The checkout's POST /api/payments comes late: Stripe's deliveries before it are
            # parked, and applied when it comes.
            self.queue(("stripe", event("checkout.session.completed", paid, f"evt_c{n}")))
            self.queue(("checkout", body))
        else:
            client.post("/api/payments", json=body)
            self.queue(("stripe", event("checkout.session.completed", paid, f"evt_c{n}")))
        refunded = 0
        for step in range(self.rng.choice([0, 0, 1, 2, 3])):
            if refunded >= amount:
                break
            part = (
                amount - refunded
                if self.rng.random() < 0.3
                else self.rng.randrange(1, 1 + (amount - refunded) // 2)
            )
            self.fake.stripe_refund(pi, part)
            refunded += part
            charge_refunded = refund_event(f"evt_r{n}_{step}", refunded, payment_intent=pi)
            charge_refunded["data"]["object"].update(amount=amount, metadata={"order_id": order})
            self.queue(("stripe", charge_refunded))
        made = [r for r in self.fake.stripe_refunds() if r["payment_intent"] == pi]
        if made and self.rng.random() < 0.3:
            self._refund_fails(order, self.rng.choice(made), n)
        if self.rng.random() < 0.35:
            self._dispute(pi, amount, n)
        self.truths[order] = lambda: stripe_truth(self.fake, pi, amount)

    def _refund_fails(self, order: str, refund: dict[str, Any], n: int) -> None:
        """The bank returns a refund (an expired card): Stripe gives the money back to the
        charge. Half of them made in the Dashboard, so found through their charge."""
        self.fake.stripe_set_refund_status(refund["id"], "failed")
        metadata = {"order_id": order} if self.rng.random() < 0.5 else {}
        failed = {**refund, "status": "failed", "metadata": metadata}
        self.queue(("stripe", event("charge.refund.updated", failed, f"evt_rf{n}")))

    def _dispute(self, pi: str, amount: int, n: int) -> None:
        """The customer's bank disputes what was not refunded (or part of it); the dispute
        closes, won or lost, or is still open at the end."""
        left = amount - sum(
            r["amount"]
            for r in self.fake.stripe_refunds()
            if r["payment_intent"] == pi and r["status"] == "succeeded"
        )
        if left <= 0:
            return
        dispute = self.fake.stripe_dispute(pi, self.rng.randrange(1, left + 1))
        self.queue(("stripe", event("charge.dispute.created", dispute, f"evt_dc{n}")))
        status = self.rng.choice(["won", "lost", "still open"])
        if status != "still open":
            closed = self.fake.stripe_close_dispute(dispute["id"], status)
            self.queue(("stripe", event("charge.dispute.closed", closed, f"evt_dx{n}")))

    def queue(self, delivery: tuple[str, Any]) -> None:
        """A delivery the last change caused. Providers send late and out of order: each
        change may be followed by any of the queued deliveries, or none."""
        self.pending.append(delivery)
        while self.pending and self.rng.random() < 0.5:
            self.deliver(self.pending.pop(self.rng.randrange(len(self.pending))))

    def deliver(self, delivery: tuple[str, Any]) -> None:
        provider, body = delivery
        if provider == "checkout":
            answer = self.client.post("/api/payments", json=body)
            assert answer.status_code in (200, 201), answer.text
            return  # not a delivery: never sent twice
        if provider == "toss":
            answer = post_toss(self.client, body)
        else:
            answer = deliver_raw(self.client, self.fake, body)
        # Applied (or found applied before) before the next change: the stream's order.
        row = result(self.client, answer)
        assert row["outcome"] != "failed", row
        self.sent.append(delivery)

    def send_the_rest(self) -> None:
        """What is still queued, shuffled, then a third of everything again (retries)."""
        self.rng.shuffle(self.pending)
        for delivery in self.pending:
            self.deliver(delivery)
        for delivery in self.rng.sample(self.sent, len(self.sent) // 3):
            self.deliver(delivery)


def event(event_type: str, obj: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}


def toss_truth(payment: dict[str, Any]) -> tuple[str, int]:
    refunded = payment["totalAmount"] - payment["balanceAmount"]
    status = {"DONE": "completed", "PARTIAL_CANCELED": "partially_refunded"}.get(
        payment["status"], "refunded" if payment["status"] == "CANCELED" else "pending"
    )
    return status, refunded


def stripe_truth(fake: FakeProviders, pi: str, amount: int) -> tuple[str, int]:
    refunds = [r for r in fake.stripe_refunds() if r["payment_intent"] == pi]
    refunded = sum(r["amount"] for r in refunds if r["status"] == "succeeded")
    disputes = [d for d in fake.stripe_disputes() if d["payment_intent"] == pi]
    if any(d["status"] == "needs_response" for d in disputes):
        return "disputed", refunded
    # A lost dispute is money returned to the customer, as a refund is (the chargeback).
    returned = refunded + sum(d["amount"] for d in disputes if d["status"] == "lost")
    if returned == 0:
        return "completed", 0
    return ("refunded" if returned >= amount else "partially_refunded"), refunded


@pytest.mark.parametrize("seed", [7, 2026, 31337])
def test_a_shuffled_stream_with_duplicates_ends_where_the_provider_is(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, seed: int
) -> None:
    stream = Stream(fake, random.Random(seed), client)
    for n in range(PAYMENTS_PER_STREAM):
        flow = stream.rng.choice(
            [stream.toss, stream.virtual_account, stream.stripe, stream.stripe]
        )
        flow(n, client)
    stream.send_the_rest()
    head = ledger.recorder.max_notification_id()
    rows = client.get(f"/api/admin/payments?limit=100&min_position={head}", headers=ADMIN)
    table = {row["order_id"]: row for row in rows.json()["items"]}
    for order, truth in stream.truths.items():
        expected = truth()
        row = table[order]
        assert (row["status"], row["refunded_amount"]) == expected, f"seed {seed}, {order}"
        payment = ledger.get_payment(UUID(row["payment_id"]))
        assert (payment.status, payment.refunded_amount) == expected, f"seed {seed}, {order}"
