"""SettlementDesk: the settlement commands, on the same event store as the payments."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger.application import PaymentLedger
from ledger.errors import ConflictError
from ledger.settlement_profile import SettlementProfile

MAX_ATTEMPTS = 30


def _now() -> datetime:
    return datetime.now(UTC)


class SettlementDesk:
    """Commands of settlement. Events go through the ledger application, so one history
    (one position sequence, one hash chain, one rebuild) holds payments and settlement."""

    def __init__(
        self,
        ledger: PaymentLedger,
        default_commission_bps: int,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.ledger = ledger
        self.default_commission_bps = default_commission_bps
        self._clock = clock

    def set_profile(
        self, trainer_id: str, commission_bps: int | None, tax_type: str
    ) -> tuple[SettlementProfile, int]:
        """Set a trainer's commission (omitted: the configured default) and tax type, from
        now on. Returns the profile and a position whose reads include it; the same terms
        again append nothing. Two admins at once: each decides on the latest version."""
        bps = self.default_commission_bps if commission_bps is None else commission_bps
        for attempt in range(MAX_ATTEMPTS):
            profile = self.find_profile(trainer_id)
            at = self._clock()
            if profile is None:
                profile = SettlementProfile.start(trainer_id, bps, tax_type, at)
            elif not profile.change(bps, tax_type, at):
                return profile, self.ledger.recorder.max_notification_id() or 0
            try:
                recordings = self.ledger.save(profile)
            except IntegrityError:
                # Another admin set this profile first: reload and decide again.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            return profile, recordings[-1].notification.id
        raise ConflictError(f"the settlement profile of {trainer_id} is changing too fast; retry")

    def find_profile(self, trainer_id: str) -> SettlementProfile | None:
        try:
            profile: object = self.ledger.repository.get(SettlementProfile.create_id(trainer_id))
        except AggregateNotFoundError:
            return None
        return profile if isinstance(profile, SettlementProfile) else None
