"""Guarantees every projection gives, on both stores: exactly once, resumable after a crash,
and rebuildable (in process and with the real `ledger rebuild` command) to identical tables."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import IntegrityError, Tracking

from ledger.application import PaymentLedger
from ledger.notification import TrainerNotification
from ledger.payment import Payment
from ledger.settings import Settings
from projections.base import Statement
from projections.notifications import NotificationsProjection
from projections.payments_table import PaymentsTableProjection
from projections.replay import apply_batch, decode, replay
from projections.runtime import PROJECTIONS, ReadModels
from tests.integration.test_ledger_store import order
from tests.integration.test_revenue import NOW, run_script

TIMEOUT = 30.0


def open_settings(database_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]


@pytest.fixture
def ledger(database_url: str) -> Iterator[PaymentLedger]:
    """A store holding the revenue script's payments and one notification marked read."""
    app = PaymentLedger(env=open_settings(database_url).eventsourcing_env())
    run_script(app)
    paid = Payment.create_id("toss", "after-midnight")
    app.mark_notification_read(TrainerNotification.create_id(paid, "payment_completed"), "t-1")
    yield app
    app.close()


@pytest.fixture
def read_models(database_url: str) -> Iterator[ReadModels]:
    models = ReadModels(open_settings(database_url))
    yield models
    models.close()


def head(ledger: PaymentLedger) -> int:
    return ledger.recorder.max_notification_id() or 0


def dump(read_models: ReadModels) -> dict[str, Any]:
    """Every row of every view's tables, and each view's position."""
    return {
        name: {
            "position": view.max_tracking_id(PaymentLedger.name),
            **{
                t: sorted(map(repr, view.query(f"SELECT * FROM {t}")))
                for t in (*view.table_names, *view.kept_tables)
            },
        }
        for name, view in read_models.views.items()
    }


def process(read_models: ReadModels, ledger: PaymentLedger, notifications: list[Any]) -> None:
    """Feed events to every projection directly, as a runner would."""
    for name, view in read_models.views.items():
        projection = PROJECTIONS[name](view=view)
        for n in notifications:
            projection.process_event(ledger.mapper.to_domain_event(n), Tracking(ledger.name, n.id))


def all_notifications(ledger: PaymentLedger) -> list[Any]:
    return list(ledger.recorder.select_notifications(start=None, limit=1_000_000))


def rebuild_all(read_models: ReadModels, ledger: PaymentLedger) -> None:
    read_models.rebuild(list(PROJECTIONS), ledger, lambda _: None)


def test_projection_killed_midway_resumes_to_the_same_tables_as_a_clean_rebuild(
    database_url: str, ledger: PaymentLedger, read_models: ReadModels
) -> None:
    notifications = all_notifications(ledger)
    process(read_models, ledger, notifications[: len(notifications) // 2])
    read_models.close()  # the process dies here, half way through the history

    restarted = ReadModels(open_settings(database_url))
    try:
        restarted.start()
        restarted.wait(head(ledger), TIMEOUT)
        restarted.stop()
        resumed = dump(restarted)
        rebuild_all(restarted, ledger)
        assert dump(restarted) == resumed
    finally:
        restarted.close()
    assert all(view["position"] == head(ledger) for view in resumed.values())


def test_a_write_that_fails_half_way_leaves_rows_and_position_untouched(
    ledger: PaymentLedger, read_models: ReadModels
) -> None:
    notifications = all_notifications(ledger)
    process(read_models, ledger, notifications[:-1])
    before = dump(read_models)
    tracking = Tracking(ledger.name, notifications[-1].id)
    for view in read_models.views.values():
        wipe: Statement = (f"DELETE FROM {(*view.table_names, *view.kept_tables)[0]}", {})
        with pytest.raises(Exception, match=r"(?i)no_such_table|does not exist|no such table"):
            view.write(tracking, [wipe, ("INSERT INTO no_such_table VALUES (1)", {})])
    assert dump(read_models) == before


def test_an_event_processed_twice_is_refused_and_counted_once(
    ledger: PaymentLedger, read_models: ReadModels
) -> None:
    notifications = all_notifications(ledger)
    process(read_models, ledger, notifications)
    before = dump(read_models)
    stats = read_models.revenue.stats(NOW)
    refund = next(n for n in notifications if n.topic.endswith("Payment.Refunded"))
    for name, view in read_models.views.items():
        projection = PROJECTIONS[name](view=view)
        with pytest.raises(IntegrityError):
            projection.process_event(
                ledger.mapper.to_domain_event(refund), Tracking(ledger.name, refund.id)
            )
    assert dump(read_models) == before
    assert read_models.revenue.stats(NOW) == stats


def test_events_applied_one_by_one_or_in_batches_give_identical_tables(
    ledger: PaymentLedger, read_models: ReadModels
) -> None:
    """Runners and rebuilds apply batches; the tables (and the audit chain's hashes) must
    be those of applying each event in its own transaction."""
    process(read_models, ledger, all_notifications(ledger))
    one_by_one = dump(read_models)
    rebuild_all(read_models, ledger)  # a page per transaction, the audit chain included
    assert dump(read_models) == one_by_one
    assert one_by_one["audit_chain"]["audit_chain"]


def test_a_batch_overlapping_events_already_applied_is_refused_whole(
    ledger: PaymentLedger, read_models: ReadModels
) -> None:
    notifications = all_notifications(ledger)
    half = len(notifications) // 2
    process(read_models, ledger, notifications[:half])
    before = dump(read_models)
    for name, view in read_models.views.items():
        projection = PROJECTIONS[name](view=view)
        overlapping = notifications[half - 2 : half + 3]  # two applied, three new
        with pytest.raises(IntegrityError, match=f"tracking for {ledger.name}"):
            apply_batch(projection, ledger.name, ledger.mapper.to_domain_event, overlapping)
    assert dump(read_models) == before

    for name, view in read_models.views.items():
        projection = PROJECTIONS[name](view=view)
        apply_batch(projection, ledger.name, ledger.mapper.to_domain_event, notifications[half:])
    resumed = dump(read_models)
    assert all(view["position"] == head(ledger) for view in resumed.values())
    rebuild_all(read_models, ledger)
    assert dump(read_models) == resumed


def test_ledger_rebuild_command_reproduces_identical_tables_and_reports_progress(
    database_url: str, ledger: PaymentLedger, read_models: ReadModels, tmp_path: Path
) -> None:
    read_models.start()
    read_models.wait(head(ledger), TIMEOUT)
    read_models.stop()
    before = dump(read_models)
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_TIMEZONE": "Asia/Seoul"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ledger"), "rebuild"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The audit hash chain opts out of default rebuilds; its tables must stay equal too.
    rebuilt = [n for n, p in PROJECTIONS.items() if getattr(p, "rebuild_by_default", True)]
    assert "revenue" in rebuilt and "payments_table" in rebuilt
    for name in rebuilt:
        assert f"{name}: {head(ledger)} events replayed" in result.stderr
        assert name in result.stdout  # the progress bar's label
    assert before["revenue"]["revenue_daily"] and before["payments_table"]["payments"]
    after = ReadModels(open_settings(database_url))  # fresh connections to the new tables
    try:
        assert dump(after) == before
    finally:
        after.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_rebuild_leaves_its_tables_compact_on_postgres(database_url: str) -> None:
    """A replay updates the same revenue bucket over and over; the rebuilt tables must not
    keep those dead row versions (every stats read would scan them)."""
    settings = open_settings(database_url)
    app = PaymentLedger(env=settings.eventsourcing_env())
    models = ReadModels(settings)
    try:
        for n in range(300):  # all completed the same day: one bucket, 300 updates
            paid = app.initiate(order(f"bulk-{n}", provider="toss")).payment_id
            app.complete(paid, f"pay-{n}", "card", NOW)
        models.rebuild(["revenue"], app, lambda _: None)
        view = models.revenue
        schema = view.datastore.schema
        with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
            for table in view.table_names:
                size = conn.execute(f"SELECT pg_relation_size('{schema}.{table}')").fetchone()
                conn.execute(f"CREATE TEMP TABLE fresh_{table} AS SELECT * FROM {schema}.{table}")
                fresh = conn.execute(f"SELECT pg_relation_size('fresh_{table}')").fetchone()
                assert size == fresh, table
    finally:
        models.close()
        app.close()


class _FailsOnRefund(PaymentsTableProjection):
    """The payments table, with a handler that breaks on the history's first refund."""

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if isinstance(domain_event, Payment.Refunded):
            raise RuntimeError("handler bug")
        super().process_event(domain_event, tracking)


def test_a_view_failing_during_a_rebuild_stops_it_with_that_error(
    ledger: PaymentLedger, read_models: ReadModels
) -> None:
    """Views replay in threads of their own: a failure must reach the caller, not hang the
    rebuild or vanish with its thread, and leave the failing view short of the head."""
    notifications = all_notifications(ledger)
    pages = [
        decode(ledger.name, ledger.mapper.to_domain_event, notifications[i : i + 3])
        for i in range(0, len(notifications), 3)
    ]
    table, inbox = read_models.payments_table, read_models.notifications
    projections = [_FailsOnRefund(view=table), NotificationsProjection(view=inbox)]
    with pytest.raises(RuntimeError, match="handler bug"):
        replay(projections, iter(pages), lambda _: None)
    assert not [t for t in threading.enumerate() if t.name.startswith("rebuild-")]
    refund = next(n.id for n in notifications if n.topic.endswith("Payment.Refunded"))
    assert (table.max_tracking_id(ledger.name) or 0) < refund


def test_a_failing_view_is_set_aside_while_the_others_go_on_and_catches_up_after(
    database_url: str, ledger: PaymentLedger
) -> None:
    """All views share one runner; one view failing (its table gone) must not hold up
    the others, /readyz's check names it, and it catches up once it can write again."""
    settings = open_settings(database_url).model_copy(update={"projection_retry_max_seconds": 0.5})
    models = ReadModels(settings)
    try:
        models.start()
        models.wait(head(ledger), TIMEOUT)
        alter(models.revenue, "ALTER TABLE revenue_payments RENAME TO revenue_payments_away")
        paid = ledger.initiate(order("order-after", amount=9900)).payment_id
        ledger.complete(paid, "pk-after", "card", NOW)
        others = tuple(name for name in models.views if name != "revenue")
        models.wait(head(ledger), TIMEOUT, names=others)

        problems = models.readiness(lambda: head(ledger), TIMEOUT).problems
        assert set(problems) == {"revenue"}, problems
        assert problems["revenue"].startswith("not running: failed ("), problems
        assert models.views["revenue"].max_tracking_id(ledger.name) < head(ledger)

        alter(models.revenue, "ALTER TABLE revenue_payments_away RENAME TO revenue_payments")
        models.wait(head(ledger), TIMEOUT)
        assert models.readiness(lambda: head(ledger), TIMEOUT).problems == {}
        models.stop()
        caught_up = dump(models)
        rebuild_all(models, ledger)
        assert dump(models) == caught_up
    finally:
        models.close()


def test_views_starting_at_different_positions_each_apply_what_they_lack_once(
    ledger: PaymentLedger, read_models: ReadModels, caplog: pytest.LogCaptureFixture
) -> None:
    """The runner starts at the lowest view's position; the others skip what they have,
    without a refused batch (logged as an error) on the way."""
    notifications = all_notifications(ledger)
    views = list(read_models.views.items())
    for n, (name, view) in enumerate(views):  # each view stopped at another event
        projection = PROJECTIONS[name](view=view)
        cut = len(notifications) * n // len(views)
        if cut:
            apply_batch(projection, ledger.name, ledger.mapper.to_domain_event, notifications[:cut])
    with caplog.at_level(logging.ERROR, logger="ledger.projections"):
        read_models.start()
        read_models.wait(head(ledger), TIMEOUT)
        read_models.stop()
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    resumed = dump(read_models)
    rebuild_all(read_models, ledger)
    assert dump(read_models) == resumed
    assert all(view["position"] == head(ledger) for view in resumed.values())


def alter(view: Any, statement: str) -> None:
    with view._transaction() as cursor:
        view._execute(cursor, statement, {})
