"""Shared objects built once in the lifespan and handed to routes as dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.providers.stripe import StripePayments
from api.providers.toss import TossPayments
from ledger.application import PaymentLedger
from ledger.settings import Settings


@dataclass
class Services:
    settings: Settings
    ledger: PaymentLedger
    toss: TossPayments
    stripe: StripePayments


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
