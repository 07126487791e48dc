"""Composition root of the read side: every projection's view, its runner, its rebuild."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import Projection
from eventsourcing.utils import Environment

from ledger.application import PaymentLedger
from ledger.settings import Settings
from projections.audit_chain import AuditChainProjection, AuditChainView
from projections.base import View
from projections.group import GroupRunner
from projections.journal import JournalProjection, JournalView
from projections.notifications import NotificationsProjection, NotificationsView
from projections.outbox import OutboxProjection, OutboxView
from projections.payments_table import PaymentsTableProjection, PaymentsTableView
from projections.reconciliation import ReconciliationProjection, ReconciliationView
from projections.replay import decode, replay
from projections.revenue import RevenueProjection, RevenueView
from projections.statements import StatementsProjection, StatementsView
from projections.supervisor import StallWatch, Supervisor

# Name → projection class. Each class maps a backend name to its view class.
PROJECTIONS: dict[str, type[Any]] = {
    PaymentsTableProjection.name: PaymentsTableProjection,
    NotificationsProjection.name: NotificationsProjection,
    RevenueProjection.name: RevenueProjection,
    JournalProjection.name: JournalProjection,
    StatementsProjection.name: StatementsProjection,
    ReconciliationProjection.name: ReconciliationProjection,
    # Queues the messages' deliveries (store/outbox.py); the worker sends them.
    OutboxProjection.name: OutboxProjection,
    # The audit hash chain: not rebuilt by default (see AuditChainProjection).
    AuditChainProjection.name: AuditChainProjection,
}
REBUILD_PAGE = 1000
# The one runner of all views (projections/group.py), as the supervisor names it.
RUNNER = "views"
# Every view and the runner's application open their own PostgreSQL pool, eagerly at its
# minimum size; small pools keep a process with several projections far below the
# server's max_connections. (SQLite ignores these keys.)
READ_SIDE_POOL = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "4"}


@dataclass(frozen=True)
class Readiness:
    head: int
    positions: dict[str, int]
    problems: dict[str, str]  # projection name → why it is not ready

    def lag(self, name: str) -> int:
        return max(self.head - self.positions[name], 0)


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
            if isinstance(view, JournalView | StatementsView):  # trainers without a profile
                view.commission_bps, view.vat_bps = settings.commission_bps, settings.vat_bps
            if isinstance(view, StatementsView):
                view.zone, view.period = settings.zone, settings.settlement_period
            self.views[name] = view
        self._retry_cap = settings.projection_retry_max_seconds
        self._supervisor = Supervisor([RUNNER], self._start_runner, self._retry_cap)
        self._runner: GroupRunner | None = None
        self._stalls = StallWatch(settings.projection_stall_seconds)
        self._stopped = threading.Event()
        # One readiness probe at a time: /readyz callers during a slow one share it.
        self._prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")
        self._probe: Future[Readiness] | None = None
        self._probe_lock = threading.Lock()

    # Typed views, so that mypy checks every call a route makes on them.
    @property
    def payments_table(self) -> PaymentsTableView:
        view = self.views[PaymentsTableProjection.name]
        assert isinstance(view, PaymentsTableView)
        return view

    @property
    def notifications(self) -> NotificationsView:
        view = self.views[NotificationsProjection.name]
        assert isinstance(view, NotificationsView)
        return view

    @property
    def revenue(self) -> RevenueView:
        view = self.views[RevenueProjection.name]
        assert isinstance(view, RevenueView)
        return view

    @property
    def reconciliation(self) -> ReconciliationView:
        view = self.views[ReconciliationProjection.name]
        assert isinstance(view, ReconciliationView)
        return view

    @property
    def journal(self) -> JournalView:
        view = self.views[JournalProjection.name]
        assert isinstance(view, JournalView)
        return view

    @property
    def statements(self) -> StatementsView:
        view = self.views[StatementsProjection.name]
        assert isinstance(view, StatementsView)
        return view

    @property
    def outbox(self) -> OutboxView:
        view = self.views[OutboxProjection.name]
        assert isinstance(view, OutboxView)
        return view

    @property
    def audit_chain(self) -> AuditChainView:
        view = self.views[AuditChainProjection.name]
        assert isinstance(view, AuditChainView)
        return view

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        """Run every projection in background threads. A supervisor restarts any that
        fails or cannot start (the store is down, say), backing off while it keeps failing."""
        self._supervisor.start()

    def _start_runner(self, _name: str) -> GroupRunner:
        projections = {name: PROJECTIONS[name](view=view) for name, view in self.views.items()}
        runner = GroupRunner(projections, self.env, self._retry_cap)
        self._runner = runner.__enter__()
        return runner

    def stop(self) -> None:
        self._stopped.set()
        self._supervisor.stop()

    def run_forever(self) -> None:
        """`ledger project`: run until interrupted."""
        self.start()
        try:
            # With a timeout: a signal the kernel delivers to another thread would not wake
            # an untimed wait, so Ctrl-C could go unnoticed.
            while not self._stopped.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # --- reading --------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        return {
            name: view.max_tracking_id(PaymentLedger.name) or 0 for name, view in self.views.items()
        }

    def readiness(self, head: Callable[[], int], timeout: float) -> Readiness:
        """The store's head, each view's position, and why any view is not ready: its
        runner is not running (when this process runs them), or it has not advanced for
        the stall time while events were pending (as seen by successive calls).

        Raises TimeoutError when the store has not answered within `timeout`.
        """
        with self._probe_lock:
            if self._probe is None or self._probe.done():
                self._probe = self._prober.submit(self._check, head)
            probe = self._probe
        return probe.result(timeout)

    def _check(self, head: Callable[[], int]) -> Readiness:
        top, positions = head(), self.positions()
        now = time.monotonic()
        problems = {name: f"not running: {why}" for name, why in self._not_running().items()}
        for name, position in positions.items():
            waited = self._stalls.stalled_for(name, position, top - position, now)
            if waited is not None and name not in problems:
                pending = top - position
                problems[name] = f"stalled: {pending} events behind, none applied in {waited:.0f} s"
        return Readiness(top, positions, problems)

    def _not_running(self) -> dict[str, str]:
        """View name → why it is not applying events: the runner is not running, or the
        view is set aside after failing."""
        stopped = self._supervisor.not_running().get(RUNNER)
        if stopped is not None:
            return dict.fromkeys(self.views, stopped)
        runner = self._runner
        return runner.set_aside() if runner is not None else {}

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
        self._prober.shutdown(wait=False, cancel_futures=True)
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
