"""A trainer's settlement profile: its rules, and two admins setting it at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ledger.application import PaymentLedger
from ledger.errors import LedgerError
from ledger.ids import stable_id
from ledger.settings import Settings
from ledger.settlement_desk import SettlementDesk
from ledger.settlement_profile import SettlementProfile

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def names(profile: SettlementProfile) -> list[str]:
    return [type(e).__name__ for e in profile.pending_events]


def topics(ledger: PaymentLedger) -> list[str]:
    stored = ledger.recorder.select_notifications(start=None, limit=1000)
    return [n.topic.rsplit(".", 1)[-1] for n in stored]


def test_a_profile_is_one_per_trainer_by_a_stable_id() -> None:
    profile = SettlementProfile.start("trainer-9", 1200, "business", NOW)
    assert profile.id == stable_id("settlement-profile:trainer-9")
    assert profile.id == SettlementProfile.create_id("trainer-9")
    assert SettlementProfile.create_id("trainer-8") != profile.id
    assert names(profile) == ["Set"]
    assert profile.state() == {
        "trainer_id": "trainer-9",
        "commission_bps": 1200,
        "tax_type": "business",
        "effective_at": NOW.isoformat(),
    }


def test_a_change_is_an_event_and_the_same_terms_again_are_none() -> None:
    profile = SettlementProfile.start("trainer-9", 1500, "individual", NOW)
    later = NOW + timedelta(days=3)
    assert profile.change(1000, "individual", later)
    assert not profile.change(1000, "individual", later + timedelta(hours=1))
    assert profile.change(1000, "business", later)
    assert names(profile) == ["Set", "Changed", "Changed"]
    assert (profile.commission_bps, profile.tax_type, profile.effective_at) == (
        1000,
        "business",
        later,
    )


@pytest.mark.parametrize(("bps", "tax_type"), [(-1, "business"), (10_001, "individual"),
                                               (1500, "company"), (True, "business")])  # fmt: skip
def test_terms_outside_the_rules_are_refused(bps: int, tax_type: str) -> None:
    with pytest.raises(LedgerError):
        SettlementProfile.start("trainer-9", bps, tax_type, NOW)
    profile = SettlementProfile.start("trainer-9", 0, "business", NOW)
    with pytest.raises(LedgerError):
        profile.change(bps, tax_type, NOW)
    assert names(profile) == ["Set"]


def test_the_bounds_are_allowed() -> None:
    profile = SettlementProfile.start("trainer-9", 0, "business", NOW)
    assert profile.change(10_000, "business", NOW)


def test_desk_defaults_the_commission_and_sets_the_same_terms_once() -> None:
    ledger = PaymentLedger()
    desk = SettlementDesk(ledger, default_commission_bps=1500, clock=lambda: NOW)
    profile, position = desk.set_profile("trainer-9", None, "individual")
    assert (profile.commission_bps, position) == (1500, 1)
    again, position_again = desk.set_profile("trainer-9", 1500, "individual")
    assert (again.version, position_again) == (1, 1)
    changed, position = desk.set_profile("trainer-9", 900, "individual")
    assert (changed.commission_bps, position) == (900, 2)
    assert topics(ledger) == ["Set", "Changed"]


def racing_clock(other: Callable[[], object]) -> Callable[[], datetime]:
    """A clock whose first reading lets another admin save first: after this desk has read
    the profile, before it saves."""
    calls = []

    def clock() -> datetime:
        calls.append(1)
        if len(calls) == 1:
            other()
        return NOW

    return clock


def test_two_admins_creating_at_once_each_decide_on_the_latest_version() -> None:
    ledger = PaymentLedger()
    other = SettlementDesk(ledger, 1500, clock=lambda: NOW)
    desk = SettlementDesk(
        ledger, 1500, clock=racing_clock(lambda: other.set_profile("trainer-9", 1000, "business"))
    )
    profile, position = desk.set_profile("trainer-9", 1200, "individual")
    assert (profile.commission_bps, profile.tax_type, profile.version, position) == (
        1200,
        "individual",
        2,
        2,
    )
    assert topics(ledger) == ["Set", "Changed"]


def test_two_admins_setting_the_same_terms_at_once_append_one_event() -> None:
    ledger = PaymentLedger()
    SettlementDesk(ledger, 1500).set_profile("trainer-9", 1500, "individual")
    other = SettlementDesk(ledger, 1500, clock=lambda: NOW)
    desk = SettlementDesk(
        ledger, 1500, clock=racing_clock(lambda: other.set_profile("trainer-9", 700, "business"))
    )
    profile, _ = desk.set_profile("trainer-9", 700, "business")
    assert profile.version == 2
    assert topics(ledger) == ["Set", "Changed"]


@pytest.mark.parametrize(
    "env",
    [
        {"LEDGER_COMMISSION_BPS": "10001"},
        {"LEDGER_VAT_BPS": "-1"},
        {"LEDGER_WITHHOLDING_BPS": "20000"},
        {"LEDGER_SETTLEMENT_PERIOD": "daily"},
    ],
)
def test_settlement_settings_outside_their_range_are_refused(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_settlement_settings_have_the_contract_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_SETTLEMENT_PERIOD", "weekly")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.commission_bps, settings.vat_bps, settings.withholding_bps) == (
        1500,
        1000,
        330,
    )
    assert settings.settlement_period == "weekly"
