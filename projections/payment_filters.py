"""The admin payments table's filters, as SQL over the `payments` columns (one text for both
stores, like every view's).

`created_at` is written by the projection as `timestamp.isoformat()` of the event's UTC
timestamp, which is not uniform: `2026-03-31T15:30:00+00:00` when the microseconds are zero,
`2026-03-31T15:30:00.123456+00:00` otherwise. The day bounds are therefore the 19-character
`YYYY-MM-DDTHH:MM:SS` prefix in UTC with no offset: a stored text whose first 19 characters
equal a bound is longer and sorts after it, which is its moment's place, whatever follows
(microseconds or not, `+00:00` or `Z`). This holds as long as the store's timestamps are UTC
(the library's default TZINFO; `pending_before` relies on it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

Condition = tuple[str, dict[str, Any]]
# What `q` must equal exactly; otherwise it is looked for inside `customer_name`.
SEARCH_IDS = ("order_id", "booking_id", "payment_id", "provider_payment_id")
# Not a backslash: the views store a backslash doubled (projections/text.py) and escape
# query parameters the same way, which would double a backslash escape too.
LIKE_ESCAPE = "!"


@dataclass(frozen=True)
class PaymentFilter:
    """Which payments a listing keeps; the defaults keep them all."""

    statuses: tuple[str, ...] = ()
    provider: str | None = None
    trainer_id: str | None = None
    discrepancy: bool | None = None  # with (True) or without (False) an amount discrepancy
    q: str | None = None  # an id exactly, or a part of the customer's name
    created_from: str | None = None  # UTC bound text, inclusive (`created_bounds`)
    created_before: str | None = None  # UTC bound text, exclusive


ALL_PAYMENTS = PaymentFilter()


def created_bounds(
    first: date | None, last: date | None, zone: tzinfo
) -> tuple[str | None, str | None]:
    """The `created_at` bounds of the business days `first`..`last` (inclusive) in `zone`:
    from the start of `first` to the start of the day after `last`."""
    return _day_start(first, zone), _day_start(last, zone, days_after=1)


def _day_start(day: date | None, zone: tzinfo, days_after: int = 0) -> str | None:
    """Midnight of `day` (+ `days_after`) in `zone` as a UTC bound text; None (no bound) for
    none, and for a day at the calendar's ends where that moment is not representable."""
    if day is None:
        return None
    try:
        local = datetime.combine(day + timedelta(days=days_after), time(), tzinfo=zone)
        return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except OverflowError:
        return None


def where(filters: PaymentFilter, before_position: int | None = None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (or "") and its parameters; `before_position` is a keyset cursor."""
    conditions = [
        *_membership(filters),
        *_search(filters.q),
        *_created(filters),
        *_before(before_position),
    ]
    if not conditions:
        return "", {}
    params = {name: value for _, values in conditions for name, value in values.items()}
    return f"WHERE {' AND '.join(sql for sql, _ in conditions)}", params


def _membership(filters: PaymentFilter) -> list[Condition]:
    conditions = [_in("status", filters.statuses)] if filters.statuses else []
    if filters.provider:
        conditions.append(("provider = :provider", {"provider": filters.provider}))
    if filters.trainer_id:
        conditions.append(("trainer_id = :trainer_id", {"trainer_id": filters.trainer_id}))
    if filters.discrepancy is not None:
        negation = "NOT " if filters.discrepancy else ""
        conditions.append((f"discrepancy_reason IS {negation}NULL", {}))
    return conditions


def _in(column: str, values: Sequence[str]) -> Condition:
    names = [f"{column}_{i}" for i in range(len(values))]
    placeholders = ", ".join(f":{name}" for name in names)
    return f"{column} IN ({placeholders})", dict(zip(names, values, strict=True))


def _search(q: str | None) -> list[Condition]:
    """An id equal to `q`, or a name holding it whatever its case. lower() on both sides, so
    that each store folds both alike: SQLite's folds ASCII only, PostgreSQL's by the
    database's ctype; Hangul has no case, so `민수` finds `김민수` on both."""
    if not q:
        return []
    exact = " OR ".join(f"{column} = :q" for column in SEARCH_IDS)
    name = f"lower(customer_name) LIKE lower(:q_like) ESCAPE '{LIKE_ESCAPE}'"
    return [(f"({exact} OR {name})", {"q": q, "q_like": f"%{like_literal(q)}%"})]


def like_literal(text: str) -> str:
    """`text` as a LIKE pattern matching only itself: `%` and `_` are not wildcards."""
    for char in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, LIKE_ESCAPE + char)
    return text


def _created(filters: PaymentFilter) -> list[Condition]:
    conditions: list[Condition] = []
    if filters.created_from is not None:
        conditions.append(("created_at >= :created_from", {"created_from": filters.created_from}))
    if filters.created_before is not None:
        conditions.append(
            ("created_at < :created_before", {"created_before": filters.created_before})
        )
    return conditions


def _before(position: int | None) -> list[Condition]:
    return [] if position is None else [("created_position < :before", {"before": position})]
