"""Shared objects built once in the lifespan and handed to routes as dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from api.errors import ApiError
from api.providers.refunds import Refunds
from api.providers.stripe import StripePayments
from api.providers.toss import TossPayments
from ledger.application import PaymentLedger
from ledger.settings import Settings
from projections.runtime import ReadModels


@dataclass
class Services:
    settings: Settings
    ledger: PaymentLedger
    toss: TossPayments
    stripe: StripePayments
    read_models: ReadModels
    refunds: Refunds


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# How long a read may wait for the projections to reach `min_position`.
FRESHNESS_TIMEOUT_SECONDS = 5.0


def read_after(
    services: ServicesDep,
    min_position: Annotated[
        int | None,
        Query(ge=0, description="Wait until the read models include this event position"),
    ] = None,
) -> ReadModels:
    """The read models, once they have caught up with `min_position` (read-your-writes)."""
    if min_position is not None:
        try:
            services.read_models.wait(min_position, FRESHNESS_TIMEOUT_SECONDS)
        except TimeoutError:
            raise ApiError(
                503, "projection_lagging", f"read models have not reached position {min_position}"
            ) from None
    return services.read_models


ReadModelsDep = Annotated[ReadModels, Depends(read_after)]
