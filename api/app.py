"""Composition root of the HTTP service: create_app(settings)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import Services
from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.providers.stripe import StripePayments, make_client
from api.providers.toss import TossClient, TossPayments
from api.routers import checkout, ops
from ledger.application import PaymentLedger
from ledger.settings import Settings


def build_services(settings: Settings) -> Services:
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    secret = settings.toss_secret_key.get_secret_value() if settings.toss_secret_key else None
    toss_client = TossClient(settings.toss_api_base, secret, settings.provider_timeout_seconds)
    stripe_key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
    stripe_client = make_client(
        stripe_key, settings.stripe_api_base, settings.provider_timeout_seconds
    )
    return Services(
        settings=settings,
        ledger=ledger,
        toss=TossPayments(ledger, toss_client),
        stripe=StripePayments(ledger, stripe_client),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings)
        app.state.services = services
        try:
            yield
        finally:
            services.toss.client.close()
            services.ledger.close()

    app = FastAPI(title="Payment ledger", version="0.1.0", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(checkout.router)
    app.include_router(ops.router)
    logging.getLogger("ledger").setLevel(logging.INFO)
    return app
