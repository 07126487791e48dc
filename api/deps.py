"""Shared objects built once in the lifespan and handed to routes as dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request

from api.errors import ApiError
from api.freshness import (
    TIMEOUT_SECONDS,
    WAITS_PER_CLIENT,
    Freshness,
    TooManyWaitsError,
    client_key,
)
from api.inbox import InboxProcessor
from api.notify.dispatcher import OutboxWorker
from api.providers.refunds import Refunds
from api.providers.registry import ProviderRegistry
from ledger.application import PaymentLedger
from ledger.settings import Settings
from ledger.settlement_desk import SettlementDesk
from ledger.statement_desk import StatementDesk
from projections.runtime import ReadModels
from store.contacts import ContactBook
from store.inbox import WebhookInbox
from store.inbox_ingest import InboxReceiver
from store.outbox import Outbox


@dataclass
class Services:
    settings: Settings
    ledger: PaymentLedger
    providers: ProviderRegistry
    read_models: ReadModels
    refunds: Refunds
    settlement: SettlementDesk
    statements: StatementDesk
    inbox: WebhookInbox
    inbox_processor: InboxProcessor
    outbox: Outbox
    outbox_worker: OutboxWorker  # runs in the leader only
    contacts: ContactBook  # personal data, outside the event history
    freshness: Freshness = field(init=False)
    receiver: InboxReceiver = field(init=False)  # the webhook route's insert, on the loop

    def __post_init__(self) -> None:
        self.receiver = InboxReceiver(self.inbox)
        # Built with the other services, in the lifespan: one per serving process and loop.
        self.freshness = Freshness(
            self.read_models.positions,
            timeout=self.settings.freshness_timeout_seconds,
            waits_per_client=self.settings.freshness_waits_per_token,
        )


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

# A refused or timed-out wait may be retried about a second later.
RETRY_SOON = {"Retry-After": "1"}
MIN_POSITION_HELP = (
    "Wait until the read models include this event position: at most"
    f" LEDGER_FRESHNESS_TIMEOUT_SECONDS (default {TIMEOUT_SECONDS:g} s; then 503"
    " projection_lagging), and at most LEDGER_FRESHNESS_WAITS_PER_TOKEN (default"
    f" {WAITS_PER_CLIENT}) such reads at once per token (beyond: 429 too_many_waits)"
)


def _host(request: Request) -> str | None:
    return request.client.host if request.client else None


async def read_after(
    request: Request,
    services: ServicesDep,
    min_position: Annotated[int | None, Query(ge=0, description=MIN_POSITION_HELP)] = None,
) -> ReadModels:
    """The read models, once they have caught up with `min_position` (read-your-writes).

    Async, so that a waiting read holds no threadpool thread (api/freshness.py); the routes
    using it stay sync `def`s.
    """
    if min_position is not None:
        freshness = services.freshness
        client = client_key(request.headers.get("authorization"), _host(request))
        try:
            await freshness.wait(min_position, client)
        except TooManyWaitsError:
            message = f"at most {freshness.waits_per_client} reads may wait at once per token"
            raise ApiError(429, "too_many_waits", message, RETRY_SOON) from None
        except TimeoutError:
            message = f"read models have not reached position {min_position}"
            raise ApiError(503, "projection_lagging", message, RETRY_SOON) from None
    return services.read_models


ReadModelsDep = Annotated[ReadModels, Depends(read_after)]
