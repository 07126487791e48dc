"""Composition root of the read side: every projection's view, its runner, its rebuild."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import ApplicationSubscription, BaseProjectionRunner, Projection
from eventsourcing.utils import Environment

from ledger.application import PaymentLedger
from ledger.settings import Settings
from projections.audit_chain import AuditChainProjection
from projections.base import View
from projections.notifications import NotificationsProjection
from projections.payments_table import PaymentsTableProjection
from projections.replay import apply_batch, decode, replay
from projections.revenue import RevenueProjection, RevenueView

log = logging.getLogger("ledger.projections")

# Name → projection class. Each class maps a backend name to its view class.
PROJECTIONS: dict[str, type[Any]] = {
    PaymentsTableProjection.name: PaymentsTableProjection,
    NotificationsProjection.name: NotificationsProjection,
    RevenueProjection.name: RevenueProjection,
    # The audit hash chain: not rebuilt by default (see AuditChainProjection).
    AuditChainProjection.name: AuditChainProjection,
}
REBUILD_PAGE = 1000
# Most events a runner applies in one transaction: bounds a transaction's size after a
# pause, while under steady load every event that has arrived goes in one batch.
RUNNER_BATCH = 500
# Every view and every runner's application opens its own PostgreSQL pool, eagerly at its
# minimum size; small pools keep a process with several projections far below the
# server's max_connections. (SQLite ignores these keys.)
READ_SIDE_POOL = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "4"}
RESTART_DELAY_SECONDS = 1.0


class ReadModels:
    """The views of all projections in this process, and (optionally) their runners."""

    def __init__(self, settings: Settings) -> None:
        self.env = {**settings.eventsourcing_env(), **READ_SIDE_POOL}
        backend = "postgres" if settings.is_postgres else "sqlite"
        self.views: dict[str, View] = {}
        for name, projection_class in PROJECTIONS.items():
            factory = InfrastructureFactory.construct(env=Environment(name, self.env))
            view = factory.tracking_recorder(projection_class.views[backend])
            assert isinstance(view, View)
            if isinstance(view, RevenueView):
                view.zone = settings.zone  # business days are LEDGER_TIMEZONE's
            self.views[name] = view
        self._runners: dict[str, BaseProjectionRunner[PaymentLedger]] = {}
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def view(self, name: str) -> Any:
        return self.views[name]

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        """Run every projection in background threads, restarting any that fails."""
        for name in PROJECTIONS:
            self._start_runner(name)
        self._supervisor = threading.Thread(target=self._supervise, name="projections", daemon=True)
        self._supervisor.start()

    def _start_runner(self, name: str) -> None:
        projection: Projection[Any] = PROJECTIONS[name](view=self.views[name])
        runner: BaseProjectionRunner[PaymentLedger] = BatchingProjectionRunner(
            projection=projection,
            application_class=PaymentLedger,
            tracking_recorder=self.views[name],
            topics=(),
            env=self.env,
        )
        self._runners[name] = runner.__enter__()

    def _supervise(self) -> None:
        while not self._stopping.wait(RESTART_DELAY_SECONDS):
            for name, runner in list(self._runners.items()):
                if runner.is_interrupted.is_set() and not self._stopping.is_set():
                    try:
                        runner.__exit__(None, None, None)
                    except Exception:
                        log.exception("projection %s failed; restarting it", name)
                    self._start_runner(name)

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        for name, runner in self._runners.items():
            try:
                runner.__exit__(None, None, None)
            except Exception:
                log.exception("projection %s stopped with an error", name)
        self._runners.clear()

    def run_forever(self) -> None:
        """`ledger project`: run until interrupted."""
        self.start()
        try:
            self._stopping.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # --- reading --------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        return {
            name: view.max_tracking_id(PaymentLedger.name) or 0 for name, view in self.views.items()
        }

    def wait(self, position: int, timeout: float, names: tuple[str, ...] = ()) -> None:
        """Block until the named views (default: all) have processed `position`.

        Raises TimeoutError when they have not caught up in time.
        """
        for name in names or tuple(self.views):
            self.views[name].wait(PaymentLedger.name, position, timeout=timeout)

    # --- rebuilding -----------------------------------------------------------------

    def rebuild(
        self, names: Sequence[str], ledger: PaymentLedger, progress: Callable[[int], None]
    ) -> int:
        """Drop the named views, replay the whole history into them, compact them.

        One pass: each page of events is read and decoded once, then applied to every view
        in one transaction per view (see projections/replay.py). Memory stays flat: a few
        pages are held at a time. Returns events replayed.
        """
        projections: list[Projection[Any]] = []
        for name in names:
            view = self.views[name]
            view.drop()
            view.create_table()
            projections.append(PROJECTIONS[name](view=view))
        pages = (decode(ledger.name, ledger.mapper.to_domain_event, p) for p in _pages(ledger))
        count = replay(projections, pages, progress)
        for projection in projections:
            projection.view.compact()
        return count

    def close(self) -> None:
        self.stop()
        for view in self.views.values():
            view.datastore.close()  # type: ignore[attr-defined]


def _pages(ledger: PaymentLedger) -> Iterator[list[Any]]:
    after = 0
    while True:
        page = list(
            ledger.recorder.select_notifications(
                start=after, limit=REBUILD_PAGE, inclusive_of_start=False
            )
        )
        if not page:
            return
        yield page
        after = page[-1].id


class BatchingProjectionRunner(BaseProjectionRunner[PaymentLedger]):
    """The library's runner, applying every event that has arrived in one transaction.

    Per event, a view costs a transaction (a commit, an fsync on PostgreSQL); under a
    few concurrent webhook clients the four views fell seconds behind. Our recorders'
    subscriptions (store/batching.py) hand over what has been pulled; with another
    recorder the runner still works, one event per batch.
    """

    @staticmethod
    def _process_events_loop(  # type: ignore[override]
        subscription: ApplicationSubscription[Any],
        projection: Projection[Any],
        is_stopping: threading.Event,
        runner: weakref.ReferenceType[BaseProjectionRunner[Any]],
    ) -> None:
        source = subscription.subscription
        next_batch = getattr(source, "next_batch", lambda _limit: [next(source)])
        try:
            while True:
                try:
                    notifications = next_batch(RUNNER_BATCH)
                except StopIteration:
                    return
                apply_batch(
                    projection,
                    subscription.name,
                    subscription.mapper.to_domain_event,
                    notifications,
                )
        except BaseException as error:
            owner = runner()
            if owner is not None:
                owner._thread_error = error  # how the library reports a failed runner
            else:
                log.exception("projection runner was deleted before its error was reported")
        finally:
            is_stopping.set()
