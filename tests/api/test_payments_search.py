"""The admin payments table's search (`q`), business-day range (`from`/`to`) and its CSV
export (`GET /api/admin/payments.csv`), over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers.payments_export import (
    CSV_COLUMNS,
    EXPORT_PAGE_SIZE,
    csv_cells,
    csv_chunks,
    export_page_size,
    payment_pages,
)
from ledger.application import PaymentLedger, PaymentOrder
from ledger.order import OrderClaim
from ledger.payment import Payment
from projections.base import PostgresView
from projections.payment_filters import ALL_PAYMENTS, PaymentFilter
from tests.api.test_admin_payments import ADMIN, AUDITOR, NOW, orders, seed
from tests.api.test_checkout import assert_error
from tests.conftest import make_settings
from tests.fake_providers import FakeProviders

# Seoul is UTC+9: its 2026-04-01 runs from 2026-03-31T15:00Z to 2026-04-01T15:00Z.
AROUND_SEOUL_MIDNIGHT = {
    "mar31-last": datetime(2026, 3, 31, 14, 59, 59, 999999, tzinfo=UTC),
    "apr01-first": datetime(2026, 3, 31, 15, 0, tzinfo=UTC),  # written without microseconds
    "apr01-early": datetime(2026, 3, 31, 15, 30, tzinfo=UTC),
    "apr01-last": datetime(2026, 4, 1, 14, 59, 59, tzinfo=UTC),
    "apr02-first": datetime(2026, 4, 1, 15, 0, 0, 1, tzinfo=UTC),
}


def order(order_id: str, name: str = "Kim", provider: str = "toss", **fields: Any) -> PaymentOrder:
    values: dict[str, Any] = {
        "booking_id": f"b-{order_id}", "customer_id": "c", "customer_name": name,
        "trainer_id": "t-1", "booking_date": "2026-04-10", "amount": 15000,
        "currency": "KRW" if provider == "toss" else "USD", **fields,
    }  # fmt: skip
    return PaymentOrder(order_id=order_id, provider=provider, **values)


def initiate_at(ledger: PaymentLedger, payment_order: PaymentOrder, at: datetime) -> UUID:
    """`ledger.initiate` as if at `at`: the library takes an explicit timestamp through
    `_create` (as ledger/reactions.py uses it), so a creation can sit either side of midnight."""
    payment = Payment._create(Payment.Initiated, timestamp=at, **asdict(payment_order))
    ledger.save(payment, OrderClaim.of(payment))
    return payment.id


def head(ledger: PaymentLedger) -> int:
    return ledger.recorder.max_notification_id() or 0


def payments(client: TestClient, position: int, **query: Any) -> Any:
    return client.get("/api/admin/payments", params={"min_position": position, **query},
                      headers=ADMIN)  # fmt: skip


def every_page(client: TestClient, position: int, **query: Any) -> list[dict[str, Any]]:
    """All items of the JSON listing for `query`, following `next_cursor`."""
    items: list[dict[str, Any]] = []
    params = {"min_position": position, **query}
    while True:
        page = client.get("/api/admin/payments", params=params, headers=ADMIN)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        if page.json()["next_cursor"] is None:
            return items
        params = {**query, "cursor": page.json()["next_cursor"]}


def export(client: TestClient, position: int, **query: Any) -> list[dict[str, str]]:
    response = client.get(
        "/api/admin/payments.csv", params={"min_position": position, **query}, headers=AUDITOR
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="payments.csv"'
    reader = csv.DictReader(io.StringIO(response.text, newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def as_csv(item: dict[str, Any]) -> dict[str, str]:
    """A JSON item as the export spells it: the discrepancy flattened, null an empty cell."""
    discrepancy = item.pop("amount_discrepancy") or {}
    item |= {
        "expected_amount": discrepancy.get("expected_amount"),
        "captured_amount": discrepancy.get("captured_amount"),
        "discrepancy_reason": discrepancy.get("reason"),
    }
    return {name: "" if value is None else str(value) for name, value in item.items()}


# --- search ---


def test_each_id_of_a_payment_finds_it(client: TestClient, ledger: PaymentLedger) -> None:
    _, position = seed(ledger)  # o-1 is completed with provider payment id pk-1
    by_order = payments(client, position, q="o-1")
    assert orders(by_order) == ["o-1"]
    payment_id = by_order.json()["items"][0]["payment_id"]
    assert orders(payments(client, position, q="pk-1")) == ["o-1"]
    assert orders(payments(client, position, q=payment_id)) == ["o-1"]
    assert orders(payments(client, position, q="b-0")) == ["o-4", "o-2", "o-0"]
    # Ids are matched whole, never as a part.
    assert orders(payments(client, position, q="o-")) == []
    assert orders(payments(client, position, q="pk")) == []
    assert orders(payments(client, position, q="no-such-payment")) == []


def test_a_part_of_the_customer_name_finds_it_in_any_case(
    client: TestClient, ledger: PaymentLedger
) -> None:
    for i, name in enumerate(
        ["김민수", "이민호", "Minsu KIM", "100%_Lee", "100 Lee", "Back\\slash"]
    ):
        ledger.initiate(order(f"n-{i}", name))
    position = head(ledger)
    assert orders(payments(client, position, q="민수")) == ["n-0"]
    assert orders(payments(client, position, q="민")) == ["n-1", "n-0"]
    assert orders(payments(client, position, q="minsu k")) == ["n-2"]
    assert orders(payments(client, position, q="MINSU k")) == ["n-2"]
    # `%` and `_` are themselves, not LIKE's wildcards; a backslash too.
    assert orders(payments(client, position, q="%")) == ["n-3"]
    assert orders(payments(client, position, q="0_")) == []
    assert orders(payments(client, position, q="%_l")) == ["n-3"]
    assert orders(payments(client, position, q="k\\s")) == ["n-5"]
    assert orders(payments(client, position, q="nobody")) == []
    assert orders(payments(client, position, q="")) == [f"n-{i}" for i in range(5, -1, -1)]


# --- business days ---


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("Asia/Seoul", "2026-03-31", ["mar31-last"]),
        ("Asia/Seoul", "2026-04-01", ["apr01-last", "apr01-early", "apr01-first"]),
        ("Asia/Seoul", "2026-04-02", ["apr02-first"]),
        # The same moments by UTC's days: the boundary moves nine hours.
        ("UTC", "2026-03-31", ["apr01-early", "apr01-first", "mar31-last"]),
        ("UTC", "2026-04-01", ["apr02-first", "apr01-last"]),
    ],
)
def test_from_and_to_are_business_days_in_the_ledger_timezone(
    database_url: str, fake: FakeProviders, zone: str, day: str, expected: list[str]
) -> None:
    settings = make_settings(database_url, fake, timezone=zone)
    with TestClient(create_app(settings)) as client:
        ledger = client.app.state.services.ledger  # type: ignore[attr-defined]
        for order_id, at in AROUND_SEOUL_MIDNIGHT.items():
            initiate_at(ledger, order(order_id), at)
        position = head(ledger)
        assert orders(payments(client, position, **{"from": day, "to": day})) == expected
        # One-sided ranges: from the day on, and up to the day.
        later = orders(payments(client, position, **{"from": day}))
        earlier = orders(payments(client, position, to=day))
        assert set(later) & set(earlier) == set(expected)
        assert set(later) | set(earlier) == set(AROUND_SEOUL_MIDNIGHT)


def test_created_at_texts_with_and_without_microseconds_compare_as_moments(
    client: TestClient, ledger: PaymentLedger
) -> None:
    for order_id, at in AROUND_SEOUL_MIDNIGHT.items():
        initiate_at(ledger, order(order_id), at)
    position = head(ledger)
    created = {i["order_id"]: i["created_at"] for i in payments(client, position).json()["items"]}
    assert created["apr01-first"] == "2026-03-31T15:00:00+00:00"  # isoformat drops zero µs
    assert created["mar31-last"] == "2026-03-31T14:59:59.999999+00:00"
    within = orders(payments(client, position, **{"from": "2026-04-01", "to": "2026-04-01"}))
    assert "apr01-first" in within and "mar31-last" not in within


@pytest.mark.parametrize("route", ["/api/admin/payments", "/api/admin/payments.csv"])
def test_from_after_to_is_400_invalid_range(
    client: TestClient, ledger: PaymentLedger, route: str
) -> None:
    _, position = seed(ledger)
    answer = client.get(route, params={"from": "2026-04-02", "to": "2026-04-01"}, headers=ADMIN)
    assert_error(answer, 400, "invalid_range")
    assert head(ledger) == position  # nothing was appended
    same_day = client.get(route, params={"from": "2026-04-01", "to": "2026-04-01"}, headers=ADMIN)
    assert same_day.status_code == 200


@pytest.mark.parametrize("route", ["/api/admin/payments", "/api/admin/payments.csv"])
@pytest.mark.parametrize(
    "query",
    ["from=2026-4-1", "to=20260401", "from=1711929600", "to=2026-02-30",
     "from=2026-04-01T00:00:00", "from=" + "\u0662\u0660\u0662\u0666-04-01",  # Arabic-Indic digits
     "q=" + "x" * 201, "q=%00"],
)  # fmt: skip
def test_malformed_days_and_searches_are_422(client: TestClient, route: str, query: str) -> None:
    assert_error(client.get(f"{route}?{query}", headers=ADMIN), 422)


# --- the CSV export ---


@pytest.fixture
def small_pages(client: TestClient) -> Iterator[int]:
    """Exports read the view 2 rows at a time, so a few payments span several pages."""
    client.app.dependency_overrides[export_page_size] = lambda: 2  # type: ignore[attr-defined]
    yield 2
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]


def seed_with_discrepancy(ledger: PaymentLedger) -> int:
    seed(ledger)
    pid = ledger.initiate(order("o-6", "Stripe Park", "stripe", amount=5000)).payment_id
    ledger.complete(pid, "cs-6", "card", NOW, captured_amount=4500, discrepancy_reason="coupon")
    return head(ledger)


@pytest.mark.parametrize(
    "query",
    [{}, {"provider": "stripe"}, {"q": "customer"}, {"status": "failed_or_cancelled"},
     {"trainer_id": "t-1", "from": "2000-01-01"}, {"discrepancy": "true"}, {"q": "nobody"}],
)  # fmt: skip
def test_the_csv_holds_the_json_rows_for_the_same_filters(
    client: TestClient, ledger: PaymentLedger, small_pages: int, query: dict[str, str]
) -> None:
    position = seed_with_discrepancy(ledger)
    expected = [as_csv(item) for item in every_page(client, position, **query)]
    assert export(client, position, **query) == expected
    if not query:
        assert len(expected) == 7 > small_pages  # several pages, the last one short
        assert expected[0]["discrepancy_reason"] == "coupon"
        assert (expected[0]["expected_amount"], expected[0]["captured_amount"]) == ("5000", "4500")


def test_an_export_of_exactly_whole_pages_ends(
    client: TestClient, ledger: PaymentLedger, small_pages: int
) -> None:
    _, position = seed(ledger)  # six payments: three full pages, then an empty read
    assert [row["order_id"] for row in export(client, position)] == [
        f"o-{i}" for i in range(5, -1, -1)
    ]


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_prefixed(
    client: TestClient, ledger: PaymentLedger
) -> None:
    names = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "Kim = Lee", "'quoted"]
    for i, name in enumerate(names):
        ledger.initiate(order(f"x-{i}", name))
    rows = export(client, head(ledger))
    assert [row["customer_name"] for row in reversed(rows)] == [
        "'=HYPERLINK(\"http://x\")", "'+1+1", "'-2", "'@SUM(A1)", "Kim = Lee", "'quoted",
    ]  # fmt: skip

    # Tab and carriage return never pass checkout's validation; the export guards them too.
    def cell(column: str, value: str) -> Any:
        cells = csv_cells({**rows[0], "amount_discrepancy": None, column: value})
        return cells[CSV_COLUMNS.index(column)]

    assert (cell("failure_message", "\tcmd"), cell("failure_code", "\r1")) == ("'\tcmd", "'\r1")


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), ({"Authorization": "Bearer wrong"}, 401)]
)
def test_the_export_needs_an_admin_or_auditor_token(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    assert_error(client.get("/api/admin/payments.csv", headers=headers), status)
    assert client.get("/api/admin/payments.csv", headers=ADMIN).status_code == 200


class CountingView:
    """A payments table of `rows` (newest first) that records each read's size."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.reads: list[int] = []

    def page(
        self, filters: PaymentFilter, *, before_position: int | None, limit: int
    ) -> list[dict[str, Any]]:
        kept = [
            r
            for r in self.rows
            if before_position is None or r["created_position"] < before_position
        ]
        self.reads.append(len(kept[:limit]))
        return kept[:limit]


def test_the_export_reads_and_sends_one_page_at_a_time() -> None:
    rows = [{"created_position": n, "amount_discrepancy": None, **dict.fromkeys(CSV_COLUMNS, n)}
            for n in range(2500, 0, -1)]  # fmt: skip
    view = CountingView(rows)
    chunks = csv_chunks(payment_pages(view, ALL_PAYMENTS, EXPORT_PAGE_SIZE))  # type: ignore[arg-type]
    first = next(chunks)
    assert view.reads == [1000] and first.count("\r\n") == 1 + 1000  # the header, one page
    assert [chunk.count("\r\n") for chunk in chunks] == [1000, 500]
    assert view.reads == [1000, 1000, 500]
    assert EXPORT_PAGE_SIZE <= 1000


# --- everything at once ---


def test_combined_filters_page_with_the_cursor_and_export_alike(
    client: TestClient, ledger: PaymentLedger
) -> None:
    for i, at in enumerate(AROUND_SEOUL_MIDNIGHT.values()):
        for provider in ("toss", "stripe"):
            initiate_at(ledger, order(f"{provider}-{i}", f"Kim {i}", provider), at)
            initiate_at(ledger, order(f"{provider}-lee-{i}", f"Lee {i}", provider), at)
    position = head(ledger)
    query = {"q": "kim", "provider": "toss", "from": "2026-04-01", "to": "2026-04-01",
             "status": "pending", "limit": 1}  # fmt: skip
    items = every_page(client, position, **query)
    assert [i["order_id"] for i in items] == ["toss-3", "toss-2", "toss-1"]
    del query["limit"]
    assert [row["order_id"] for row in export(client, position, **query)] == [
        "toss-3", "toss-2", "toss-1",
    ]  # fmt: skip
    assert_error(payments(client, position, **query, cursor="nope"), 400, "invalid_cursor")


def test_the_searched_ids_are_indexed(client: TestClient) -> None:
    view = client.app.state.services.read_models.payments_table  # type: ignore[attr-defined]
    indexes = (
        "SELECT indexname AS name FROM pg_indexes"
        " WHERE schemaname = current_schema() AND tablename = 'payments'"
        if isinstance(view, PostgresView)
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'payments'"
    )
    names = {row["name"] for row in view.query(indexes)}
    assert {"payments_order", "payments_provider_payment"} <= names
