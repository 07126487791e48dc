"""Deterministic, realistic-looking orders and provider payloads for the benchmarks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

from ledger.application import PaymentOrder

WEBHOOK_SECRET = "whsec_benchmark"
NAMES = ("Kim Minji", "Lee Junho", "Park Seoyeon", "Choi Jiwoo", "Jung Hana", "Alex Smith")


def order(prefix: str, n: int, provider: str = "stripe") -> PaymentOrder:
    """Order `n` of a series: spread over 200 trainers, 400 days, KRW and USD."""
    krw = n % 4 != 0
    return PaymentOrder(
        order_id=f"{prefix}-{n:09d}",
        booking_id=f"booking-{prefix}-{n:09d}",
        customer_id=f"customer-{n % 5000:05d}",
        customer_name=NAMES[n % len(NAMES)],
        trainer_id=f"trainer-{n % 200:03d}",
        booking_date=f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}",
        amount=15000 + 1000 * (n % 50) if krw else 1200 + 100 * (n % 30),
        currency="KRW" if krw else "USD",
        provider=provider,
    )


def now() -> datetime:
    return datetime.now(UTC)


def session_completed(o: PaymentOrder, n: int) -> bytes:
    """A `checkout.session.completed` event as Stripe sends it (paid, metadata.order_id)."""
    created = int(time.time())
    session: dict[str, Any] = {
        "id": f"cs_bench_{n:09d}",
        "object": "checkout.session",
        "amount_subtotal": o.amount,
        "amount_total": o.amount,
        "client_reference_id": None,
        "created": created,
        "currency": o.currency.lower(),
        "livemode": False,
        "metadata": {"order_id": o.order_id},
        "mode": "payment",
        "payment_intent": f"pi_bench_{n:09d}",
        "payment_method_types": ["card"],
        "payment_status": "paid",
        "status": "complete",
    }
    event = {
        "id": f"evt_bench_{n:09d}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": session},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
    }
    return json.dumps(event).encode()


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """`Stripe-Signature`, computed as tests/fake_providers.py does (and as Stripe does)."""
    t = int(time.time())
    signed = f"{t}.".encode() + payload
    return f"t={t},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"
