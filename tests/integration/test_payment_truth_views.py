"""Provider truth through the read side, on both stores: commands on the PaymentLedger,
then the payments table, the admin statistics, the filters, the trainer's inbox, and a
rebuild that reproduces every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from api.auth import issue_trainer_token
from api.routers.admin import current_time
from ledger.application import PaymentLedger, PaymentOrder
from ledger.settings import Settings
from projections.base import View
from projections.runtime import ReadModels

ADMIN = {"Authorization": "Bearer admin-token"}
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def order(name: str, amount: int = 10000, currency: str = "USD", provider: str = "stripe") -> Any:
    return PaymentOrder(
        order_id=name, booking_id=f"b-{name}", customer_id="c", customer_name="Jane Doe",
        trainer_id="t-1", booking_date="2026-12-01", amount=amount, currency=currency,
        provider=provider,
    )  # fmt: skip


def paid(ledger: PaymentLedger, name: str, **complete: Any) -> UUID:
    pid = ledger.initiate(order(name)).payment_id
    ledger.complete(pid, f"pi-{name}", "card", NOW, **complete)
    return pid


def seed(ledger: PaymentLedger) -> dict[str, UUID]:
    """One payment per provider-truth story, in USD on Stripe (reversal: KRW on Toss)."""
    ids = {"plain": paid(ledger, "plain")}
    ids["discounted"] = paid(
        ledger, "discounted", captured_amount=8000, discrepancy_reason="coupon"
    )
    ids["lost"] = paid(ledger, "lost")
    ledger.refund(ids["lost"], "re-lost", 1000, "asked", NOW)
    ledger.open_dispute(ids["lost"], "dp-lost", 9000, "fraudulent", NOW)
    ledger.close_dispute(ids["lost"], "dp-lost", "lost", 4000, NOW)
    ids["won"] = paid(ledger, "won")
    ledger.open_dispute(ids["won"], "dp-won", 10000, "fraudulent", NOW)
    ledger.close_dispute(ids["won"], "dp-won", "won", 10000, NOW)
    ids["open"] = paid(ledger, "open")
    ledger.open_dispute(ids["open"], "dp-open", 10000, "fraudulent", NOW)
    ids["refund_failed"] = paid(ledger, "refund_failed")
    ledger.refund(ids["refund_failed"], "re-1", 3000, "asked", NOW)
    ledger.refund(ids["refund_failed"], "re-2", 2000, "asked", NOW)
    ledger.fail_refund(ids["refund_failed"], "re-2", "insufficient funds", NOW)
    toss = ledger.initiate(order("reversed", 50000, "KRW", "toss")).payment_id
    ledger.complete(toss, "pk-reversed", "virtual_account", NOW)
    ledger.await_deposit(toss, "pk-reversed", "secret-2", reason="deposit error")
    ids["reversed"] = toss
    return ids


def read(client: TestClient, path: str) -> Any:
    head = client.app.state.services.ledger.recorder.max_notification_id()  # type: ignore[attr-defined]
    separator = "&" if "?" in path else "?"
    response = client.get(f"{path}{separator}min_position={head}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def rows_by_order(client: TestClient, query: str = "") -> dict[str, dict[str, Any]]:
    items = read(client, f"/api/admin/payments?limit=500{query}")["items"]
    return {item["order_id"]: item for item in items}


def test_the_payments_table_shows_what_the_provider_did(
    client: TestClient, ledger: PaymentLedger
) -> None:
    ids = seed(ledger)
    rows = rows_by_order(client)
    picked = {
        name: (r["status"], r["amount"], r["ordered_amount"], r["refunded_amount"],
               r["chargeback_amount"])
        for name, r in rows.items()
    }  # fmt: skip
    assert picked == {
        "plain": ("completed", 10000, 10000, 0, 0),
        "discounted": ("completed", 8000, 10000, 0, 0),
        "lost": ("partially_refunded", 10000, 10000, 1000, 4000),
        "won": ("completed", 10000, 10000, 0, 0),
        "open": ("disputed", 10000, 10000, 0, 0),
        "refund_failed": ("partially_refunded", 10000, 10000, 3000, 0),
        "reversed": ("pending", 50000, 50000, 0, 0),
    }
    assert rows["discounted"]["amount_discrepancy"] == {
        "expected_amount": 10000, "captured_amount": 8000, "reason": "coupon",
    }  # fmt: skip
    assert rows["plain"]["amount_discrepancy"] is None
    assert rows["reversed"]["completed_at"] is None
    # The aggregate agrees with its row.
    for name, pid in ids.items():
        state = ledger.get_payment(pid).state()
        assert (state["status"], state["amount"], state["chargeback_amount"]) == (
            rows[name]["status"], rows[name]["amount"], rows[name]["chargeback_amount"],
        )  # fmt: skip


def test_disputed_and_discrepancy_filters(client: TestClient, ledger: PaymentLedger) -> None:
    seed(ledger)
    assert list(rows_by_order(client, "&status=disputed")) == ["open"]
    assert list(rows_by_order(client, "&discrepancy=true")) == ["discounted"]
    without = rows_by_order(client, "&discrepancy=false")
    assert "discounted" not in without and len(without) == 6


def test_stats_count_revenue_net_of_chargebacks_and_reversals(
    client: TestClient, ledger: PaymentLedger
) -> None:
    ids = seed(ledger)
    client.app.dependency_overrides[current_time] = lambda: NOW  # type: ignore[attr-defined]
    stats = read(client, "/api/admin/stats")
    # plain 10000 + discounted 8000 + lost (10000 - 1000 - 4000) + won 10000
    # + open (still held) 10000 + refund_failed (10000 - 3000); the reversed KRW is unpaid.
    usd = 10000 + 8000 + 5000 + 10000 + 10000 + 7000
    assert stats["total_revenue"] == {"USD": usd}
    assert stats["disputed_count"] == 1
    assert (stats["completed_count"], stats["pending_count"], stats["refunded_count"]) == (3, 1, 2)
    assert stats["by_provider"]["stripe"] == {"count": 6, "revenue": {"USD": usd}}
    assert stats["by_provider"]["toss"] == {"count": 0, "revenue": {}}
    # Unpaid again, the reversed payment is back in the bucket of its creation day.
    read_models: ReadModels = client.app.state.services.read_models  # type: ignore[attr-defined]
    [reversed_row] = [
        row
        for row in read_models.revenue.dump()["revenue_payments"]
        if row["payment_id"] == str(ids["reversed"])
    ]
    assert reversed_row["day"] == reversed_row["created_day"] != "2026-11-25"


def test_the_trainer_is_told_of_the_reversal(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    seed(ledger)
    token = issue_trainer_token(settings, "t-1", 365)
    head = ledger.recorder.max_notification_id()
    response = client.get(
        f"/api/trainers/t-1/notifications?min_position={head}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    [reversal] = [n for n in response.json()["items"] if n["title"] == "Payment reversed"]
    assert "Jane Doe" in reversal["message"] and "2026-12-01" in reversal["message"]
    assert "50,000 KRW" in reversal["message"]
    booking = read(client, "/api/admin/bookings/b-reversed")
    assert [n["title"] for n in booking["trainer_notifications"]] == [
        "New booking paid", "Payment reversed",
    ]  # fmt: skip


def test_a_rebuild_reproduces_the_same_tables(client: TestClient, ledger: PaymentLedger) -> None:
    seed(ledger)
    read(client, "/api/admin/stats")  # caught up
    read_models: ReadModels = client.app.state.services.read_models  # type: ignore[attr-defined]
    names = ["payments_table", "revenue", "notifications"]
    read_models.wait(ledger.recorder.max_notification_id() or 0, timeout=30, names=tuple(names))
    before = {name: read_models.views[name].dump() for name in names}  # type: ignore[attr-defined]
    read_models.stop()  # a rebuild runs with the service stopped
    read_models.rebuild(names, ledger, lambda _: None)
    after = {name: read_models.views[name].dump() for name in names}  # type: ignore[attr-defined]
    assert after == before
    assert any(row["chargeback_amount"] for row in after["payments_table"])


def test_a_table_of_an_older_schema_is_built_again_when_a_process_starts(
    database_url: str,
) -> None:
    settings = Settings(_env_file=None, database_url=database_url)
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    seed(ledger)
    head = ledger.recorder.max_notification_id() or 0
    names = ("payments_table", "revenue")
    first = ReadModels(settings)
    first.start()
    first.wait(head, timeout=30, names=names)
    before = {name: first.views[name].dump() for name in names}  # type: ignore[attr-defined]
    # As a deployment of the previous release left them: without the newest columns.
    alter(first.payments_table, "ALTER TABLE payments DROP COLUMN discrepancy_reason")
    alter(first.revenue, "ALTER TABLE revenue_payments DROP COLUMN failure_code")
    first.close()
    upgraded = ReadModels(settings)
    try:
        upgraded.start()
        upgraded.wait(head, timeout=30, names=names)
        after = {name: upgraded.views[name].dump() for name in names}  # type: ignore[attr-defined]
    finally:
        upgraded.close()
        ledger.close()
    assert after == before


def alter(view: View, statement: str) -> None:
    with view._transaction() as cursor:
        view._execute(cursor, statement, {})
