"""Revenue buckets and statistics against real stores, checked against an independent fold
of the stored events (not against the projection's own SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledger.application import PaymentLedger, PaymentOrder
from ledger.payment import Payment
from ledger.settings import Settings
from projections.runtime import ReadModels

SEOUL = ZoneInfo("Asia/Seoul")
# 2026-12-01 00:30 in Seoul, still 2026-11-30 in UTC: "today" and "this month" differ by zone.
NOW = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
BEFORE_MIDNIGHT = datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC)  # 23:59:59 Nov 30, Seoul
AFTER_MIDNIGHT = datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC)  # 00:00:00 Dec 1, Seoul
LAST_MONTH = datetime(2026, 10, 15, 3, 0, tzinfo=UTC)
LATER_THIS_MONTH = NOW + timedelta(days=1)
PAID = ("completed", "partially_refunded", "refunded", "disputed")

# order_id, provider, currency, amount, then the steps: (command, *args).
SCRIPT: list[tuple[str, str, str, int, list[tuple[Any, ...]]]] = [
    ("after-midnight", "toss", "KRW", 50000, [("complete", AFTER_MIDNIGHT)]),
    ("before-midnight", "toss", "KRW", 30000, [("complete", BEFORE_MIDNIGHT)]),
    ("usd-partial", "stripe", "USD", 1234, [("complete", AFTER_MIDNIGHT), ("refund", 234)]),
    ("usd-full", "stripe", "USD", 5000, [("complete", BEFORE_MIDNIGHT), ("refund", 5000)]),
    ("pending", "toss", "KRW", 20000, []),
    ("declined", "stripe", "USD", 999, [("fail",)]),
    ("abandoned", "toss", "KRW", 15000, [("cancel",)]),
    ("krw-stripe", "stripe", "KRW", 70000,
     [("complete", LAST_MONTH), ("refund", 20000), ("refund", 20000)]),
    ("retry-ok", "toss", "USD", 800,
     [("fail",), ("complete", AFTER_MIDNIGHT + timedelta(hours=1))]),
    ("two-refunds", "toss", "KRW", 10000,
     [("complete", AFTER_MIDNIGHT), ("refund", 4000), ("refund", 6000)]),
    ("expired", "stripe", "USD", 2500, [("fail",), ("cancel",)]),
    ("late-failure", "toss", "KRW", 40000, [("complete", AFTER_MIDNIGHT), ("fail",)]),
    ("tomorrow", "toss", "KRW", 12000, [("complete", LATER_THIS_MONTH)]),
]  # fmt: skip


def run_script(ledger: PaymentLedger) -> int:
    """Apply SCRIPT through the ledger's commands; returns the head position."""
    for order_id, provider, currency, amount, steps in SCRIPT:
        order = PaymentOrder(
            order_id, f"b-{order_id}", "c", "Kim", "t-1", "2026-12-05", amount, currency, provider
        )
        pid = ledger.initiate(order).payment_id
        for n, (command, *args) in enumerate(steps):
            if command == "complete":
                ledger.complete(pid, f"pk-{order_id}", "card", args[0])
            elif command == "refund":
                ledger.refund(pid, f"r-{order_id}-{n}", args[0], "customer asked", NOW)
            elif command == "fail":
                ledger.fail(pid, "DECLINED", "declined", NOW)
            else:
                ledger.cancel(pid, "expired", NOW)
    return ledger.recorder.max_notification_id() or 0


def payments_from_events(ledger: PaymentLedger) -> dict[Any, dict[str, Any]]:
    """Each payment's final state, folded in plain Python from the stored events."""
    payments: dict[Any, dict[str, Any]] = {}
    for notification in ledger.recorder.select_notifications(start=None, limit=1_000_000):
        event = ledger.mapper.to_domain_event(notification)
        if isinstance(event, Payment.Initiated):
            payments[event.originator_id] = {
                "provider": event.provider, "currency": event.currency, "amount": event.amount,
                "refunded": 0, "status": "pending", "created": event.timestamp, "paid": None,
            }  # fmt: skip
        elif event.originator_id in payments:
            apply(payments[event.originator_id], event)
    return payments


def apply(payment: dict[str, Any], event: Any) -> None:
    if isinstance(event, Payment.Completed):
        payment.update(status="completed", paid=event.approved_at)
    elif isinstance(event, Payment.Failed):
        payment["status"] = "failed"
    elif isinstance(event, Payment.Cancelled):
        payment["status"] = "cancelled"
    elif isinstance(event, Payment.Refunded):
        payment["refunded"] += event.amount
        fully = payment["refunded"] == payment["amount"]
        payment["status"] = "refunded" if fully else "partially_refunded"


def business_day(payment: dict[str, Any], zone: ZoneInfo) -> str:
    moment = payment["paid"] if payment["status"] in PAID else payment["created"]
    return str(moment.astimezone(zone).date())


def net(payment: dict[str, Any]) -> int:
    return int(payment["amount"] - payment["refunded"]) if payment["status"] in PAID else 0


def expected_stats(ledger: PaymentLedger, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    """The contract's statistics, computed from the events without the projection."""
    payments = list(payments_from_events(ledger).values())
    today = now.astimezone(zone).date()

    def revenue(keep: Any) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in payments:
            if keep(p) and net(p):
                totals[p["currency"]] = totals.get(p["currency"], 0) + net(p)
        return totals

    def count(*statuses: str) -> int:
        return sum(p["status"] in statuses for p in payments)

    def provider(name: str) -> dict[str, Any]:
        paid = sum(p["provider"] == name and p["status"] in PAID for p in payments)
        return {"count": paid, "revenue": revenue(lambda p: p["provider"] == name)}

    return {
        "total_revenue": revenue(lambda p: True),
        "today_revenue": revenue(lambda p: business_day(p, zone) == str(today)),
        "month_revenue": revenue(lambda p: business_day(p, zone)[:7] == str(today)[:7]),
        "completed_count": count("completed"),
        "pending_count": count("pending"),
        "failed_count": count("failed"),
        "cancelled_count": count("cancelled"),
        "refunded_count": count("refunded", "partially_refunded"),
        "disputed_count": count("disputed"),
        "by_provider": {"toss": provider("toss"), "stripe": provider("stripe")},
    }


def expected_buckets(ledger: PaymentLedger, zone: ZoneInfo) -> list[dict[str, Any]]:
    buckets: dict[tuple[str, str, str, str], list[int]] = {}
    for p in payments_from_events(ledger).values():
        key = (business_day(p, zone), p["currency"], p["provider"], p["status"])
        bucket = buckets.setdefault(key, [0, 0, 0])
        bucket[0] += 1
        bucket[1] += net(p)
        bucket[2] += p["refunded"] if p["status"] in PAID else 0
    return [
        {"day": d, "currency": c, "provider": pr, "status": s, "count": n, "net_revenue": r,
         "refunded": back}
        for (d, c, pr, s), (n, r, back) in sorted(buckets.items())
    ]  # fmt: skip


def open_store(database_url: str, timezone: str = "Asia/Seoul") -> tuple[PaymentLedger, ReadModels]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, timezone=timezone
    )
    return PaymentLedger(env=settings.eventsourcing_env()), ReadModels(settings)


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[PaymentLedger, ReadModels]]:
    ledger, read_models = open_store(database_url)
    read_models.start()
    yield ledger, read_models
    read_models.close()
    ledger.close()


def test_stats_equal_an_independent_fold_of_the_events(
    store: tuple[PaymentLedger, ReadModels],
) -> None:
    ledger, read_models = store
    read_models.wait(run_script(ledger), timeout=30, names=("revenue",))
    stats = read_models.revenue.stats(NOW)
    assert stats == expected_stats(ledger, NOW, SEOUL)
    # Anchors, so the fold itself is checked too: Seoul's Dec 1 holds the after-midnight
    # completions; Nov 30 23:59:59 belongs to November, and October's payment to neither.
    assert stats["today_revenue"] == {"KRW": 50000 + 40000, "USD": 1000 + 800}
    assert stats["month_revenue"] == {"KRW": 50000 + 40000 + 12000, "USD": 1000 + 800}
    assert stats["total_revenue"] == {"KRW": 50000 + 30000 + 30000 + 40000 + 12000, "USD": 1800}
    # usd-full, two-refunds (refunded) + usd-partial, krw-stripe (partially refunded)
    assert stats["refunded_count"] == 4
    assert stats["by_provider"]["stripe"] == {"count": 3, "revenue": {"KRW": 30000, "USD": 1000}}


def test_each_payment_sits_in_exactly_one_bucket_of_its_business_day(
    store: tuple[PaymentLedger, ReadModels],
) -> None:
    ledger, read_models = store
    read_models.wait(run_script(ledger), timeout=30, names=("revenue",))
    view = read_models.revenue
    assert view.dump()["revenue_daily"] == expected_buckets(ledger, SEOUL)
    assert sum(row["count"] for row in view.dump()["revenue_daily"]) == len(SCRIPT)


def test_business_day_follows_the_configured_timezone(database_url: str) -> None:
    ledger, read_models = open_store(database_url, timezone="UTC")
    try:
        read_models.start()
        read_models.wait(run_script(ledger), timeout=30, names=("revenue",))
        stats = read_models.revenue.stats(NOW)
        assert stats == expected_stats(ledger, NOW, ZoneInfo("UTC"))
    finally:
        read_models.close()
        ledger.close()
    # In UTC both sides of Seoul's midnight are Nov 30, "today".
    assert stats["today_revenue"]["KRW"] == 50000 + 30000 + 40000


def test_payments_of_one_day_share_buckets_so_stats_do_not_grow_with_payments(
    store: tuple[PaymentLedger, ReadModels],
) -> None:
    ledger, read_models = store
    for i in range(40):
        order = PaymentOrder(f"o-{i}", "b", "c", "Kim", "t", "2026-12-05", 1000, "KRW", "toss")
        result = ledger.complete(ledger.initiate(order).payment_id, f"pk-{i}", "card", NOW)
    assert result.position is not None
    read_models.wait(result.position, timeout=30, names=("revenue",))
    view = read_models.revenue
    assert view.dump()["revenue_daily"] == [
        {"day": "2026-12-01", "currency": "KRW", "provider": "toss", "status": "completed",
         "count": 40, "net_revenue": 40000, "refunded": 0},
    ]  # fmt: skip
    assert view.stats(NOW)["today_revenue"] == {"KRW": 40000}
