"""`GET /api/admin/payments.csv`: the payments table's rows for the same filters as its JSON
pages, as CSV, streamed (admin or auditor token).

The rows are read in keyset pages of `EXPORT_PAGE_SIZE` by `created_position`, newest first,
one page at a time, so an export of a million payments never holds more than one page. Each
payment appears once, as it was when its page was read; payments created after the export
began are not in it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from api.auth import AdminReader
from api.deps import ReadModelsDep
from api.routers.admin import PaymentFilters
from api.schemas import PaymentRow
from projections.payment_filters import PaymentFilter
from projections.payments_table import PaymentsTableView

router = APIRouter(prefix="/api/admin", tags=["admin"])

EXPORT_PAGE_SIZE = 1000
# The JSON item's fields in its order, its nested `amount_discrepancy` flattened.
DISCREPANCY_COLUMNS = ("expected_amount", "captured_amount", "discrepancy_reason")
CSV_COLUMNS = (
    *(name for name in PaymentRow.model_fields if name != "amount_discrepancy"),
    *DISCREPANCY_COLUMNS,
)
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection");
# customer names come from checkout bodies, failure messages from providers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A header row, then every matching payment newest first",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def export_page_size() -> int:
    """Rows per read of the view; tests override this dependency to page a small export."""
    return EXPORT_PAGE_SIZE


@router.get("/payments.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
def export_payments(
    _: AdminReader,
    filters: PaymentFilters,
    read_models: ReadModelsDep,
    page_size: Annotated[int, Depends(export_page_size)],
) -> StreamingResponse:
    """(extension) The payments the filters keep, as CSV; amounts in minor units."""
    pages = payment_pages(read_models.payments_table, filters, page_size)
    first = next(pages)  # read now: a store outage is still a 503, not a cut-off download
    return StreamingResponse(
        csv_chunks(chain([first], pages)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="payments.csv"',
            "Cache-Control": "no-store",  # payment data, as the JSON answers
        },
    )


def payment_pages(
    view: PaymentsTableView, filters: PaymentFilter, page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """The matching rows, newest first, `page_size` at a time (the last page may be empty)."""
    before: int | None = None
    while True:
        rows = view.page(filters, before_position=before, limit=page_size)
        yield rows
        if len(rows) < page_size:
            return
        before = rows[-1]["created_position"]


def csv_chunks(pages: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    """The header row, then one chunk of CSV lines per page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for rows in pages:
        writer.writerows(csv_cells(row) for row in rows)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        yield text


def csv_cells(row: dict[str, Any]) -> list[Any]:
    discrepancy = row["amount_discrepancy"] or {}
    flat = {
        **row,
        "expected_amount": discrepancy.get("expected_amount"),
        "captured_amount": discrepancy.get("captured_amount"),
        "discrepancy_reason": discrepancy.get("reason"),
    }
    return [_cell(flat[name]) for name in CSV_COLUMNS]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value
