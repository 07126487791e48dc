"""Composition root of the HTTP service: create_app(settings)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import Services
from api.docs import install_docs
from api.errors import install_error_handlers
from api.hardening import Hardening, SafeJSONResponse
from api.inbox import InboxProcessor
from api.leader import LEAD_ENV, Leadership
from api.limits import BodySizeLimit
from api.metrics import Metrics, MetricsMiddleware
from api.notify.wiring import build_outbox
from api.outage import install_outage_handlers
from api.pages.router import router as admin_pages
from api.providers import stripe, toss
from api.providers.base import PaymentProvider
from api.providers.refunds import Refunds
from api.providers.registry import ProviderRegistry
from api.routers import (
    admin,
    analytics,
    audit,
    checkout,
    contacts,
    notifications,
    ops,
    payments_export,
    reconciliation,
    refunds,
    settlements,
    trainers,
    webhook_inbox,
    webhooks,
)
from ledger.application import PaymentLedger
from ledger.settings import Settings
from ledger.settlement_desk import SettlementDesk
from ledger.statement_desk import StatementDesk
from projections.runtime import ReadModels
from store.contacts import ContactBook
from store.inbox import WebhookInbox

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
ProviderFactory = Callable[[PaymentLedger, Settings], PaymentProvider]
# Adding a provider: one module with a `PaymentProvider` and its factory here (README).
BUILT_IN_PROVIDERS: tuple[ProviderFactory, ...] = (toss.from_settings, stripe.from_settings)


def build_services(settings: Settings, extra_providers: Sequence[ProviderFactory] = ()) -> Services:
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    factories = (*BUILT_IN_PROVIDERS, *extra_providers)
    providers = ProviderRegistry(factory(ledger, settings) for factory in factories)
    inbox = WebhookInbox(ledger.recorder.datastore)  # type: ignore[attr-defined]
    inbox.create_table()
    contact_book = ContactBook(ledger.recorder.datastore)  # type: ignore[attr-defined]
    contact_book.create_tables()
    read_models = ReadModels(settings)
    outbox, outbox_worker = build_outbox(settings, inbox.datastore, contact_book, read_models)
    settlement = SettlementDesk(ledger, settings.commission_bps)
    timeout = settings.freshness_timeout_seconds
    return Services(
        settings=settings,
        ledger=ledger,
        providers=providers,
        read_models=read_models,
        refunds=Refunds(ledger, providers),
        settlement=settlement,
        statements=StatementDesk(
            settlement,
            read_models.statements,
            lambda position: read_models.wait(position, timeout, ("statements",)),
            settings.withholding_bps,
        ),
        inbox=inbox,
        contacts=contact_book,
        inbox_processor=InboxProcessor(
            inbox,
            providers,
            ledger,
            retry_seconds=settings.inbox_retry_seconds,
            retry_max_seconds=settings.inbox_retry_max_seconds,
            max_attempts=settings.inbox_max_attempts,
            poll_seconds=settings.inbox_poll_seconds,
        ),
        outbox=outbox,
        outbox_worker=outbox_worker,
    )


def create_app(
    settings: Settings | None = None,
    *,
    run_projections: bool = True,
    extra_providers: Sequence[ProviderFactory] = (),
) -> FastAPI:
    """The service. `run_projections=False` serves reads from views that another process
    (`ledger project`) keeps current; `extra_providers` registers more adapters."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings, extra_providers)
        app.state.services = services
        await services.receiver.open()
        metrics.watch_store(
            lambda: services.ledger.recorder.max_notification_id() or 0,
            services.read_models.positions,
            services.inbox.waiting,
        )
        leadership = Leadership(services)
        if run_projections:  # this process may lead: projections, webhook inbox, reconciliation
            leadership.start()
        try:
            yield
        finally:
            leadership.stop()
            await services.receiver.close()
            services.read_models.close()
            services.providers.close()
            services.ledger.close()

    app = FastAPI(
        title="Payment ledger",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
        docs_url=None,  # api/docs.py serves /docs without a CDN
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Hardening)  # outside the size limit: its 413 gets the headers too
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts 413s too
    install_error_handlers(app)
    install_outage_handlers(app)
    app.include_router(checkout.router)
    app.include_router(webhooks.router)
    app.include_router(webhook_inbox.router)
    app.include_router(admin.router)
    app.include_router(payments_export.router)
    app.include_router(analytics.router)
    app.include_router(refunds.router)
    app.include_router(trainers.router)
    app.include_router(audit.router)
    app.include_router(reconciliation.router)
    app.include_router(settlements.router)
    app.include_router(contacts.router)
    app.include_router(notifications.router)
    app.include_router(ops.router)
    app.include_router(admin_pages)
    install_docs(app)
    logging.getLogger("ledger").setLevel(logging.INFO)
    return app


def app_from_environment() -> FastAPI:
    """`ledger serve --workers N`: each worker process builds its app from the environment
    (whether it may lead: LEDGER_SERVE_LEAD; one worker leads, by the lock)."""
    # A worker is a fresh interpreter: without this its log lines would go nowhere.
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return create_app(Settings(), run_projections=os.environ.get(LEAD_ENV, "1") != "0")
