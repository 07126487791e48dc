"""The contract's settlement arithmetic, to the minor unit."""

from __future__ import annotations

import pytest

from ledger.settlement import (
    NOTHING,
    Split,
    bps_of,
    payout,
    refund_split,
    round_half_up,
    sale_split,
    withholding,
)

COMMISSION, VAT, WITHHOLDING = 1500, 1000, 330


def test_the_contracts_worked_example_to_the_won() -> None:
    first, second = sale_split(100_000, COMMISSION, VAT), sale_split(50_000, COMMISSION, VAT)
    refund = refund_split(20_000, first, NOTHING, COMMISSION, VAT)
    commission = first.commission + second.commission - refund.commission
    vat = first.vat + second.vat - refund.vat
    assert (commission, vat) == (19_500, 1_950)
    result = payout(
        carried_in=0, gross_sales=150_000, refunds=20_000, commission=commission, vat=vat,
        withholding_bps=WITHHOLDING, tax_type="individual",
    )  # fmt: skip
    assert (result.before_tax, result.withholding, result.amount) == (108_550, 3_582, 104_968)
    assert result.carried == 0


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 1), (4, 10, 0), (15, 10, 2), (25, 10, 3), (-5, 10, -1), (-4, 10, 0), (-25, 10, -3)],
)
def test_rounding_is_half_up_and_mirrored_for_negatives(
    numerator: int, denominator: int, expected: int
) -> None:
    assert round_half_up(numerator, denominator) == expected


def test_commission_at_exactly_half_a_minor_unit_rounds_up() -> None:
    # 10 * 15 % = 1.5 → 2; its VAT 0.2 → 0.
    assert sale_split(10, COMMISSION, VAT) == Split(10, 2, 0)
    assert bps_of(-10, COMMISSION) == -2


def test_three_refunds_of_a_third_net_every_account_to_zero() -> None:
    sale = sale_split(99_999, COMMISSION, VAT)
    assert sale == Split(99_999, 15_000, 1_500)
    reversed_so_far = NOTHING
    for _ in range(3):
        reversed_so_far += refund_split(33_333, sale, reversed_so_far, COMMISSION, VAT)
    assert sale - reversed_so_far == NOTHING
    # The proportional share of 33,333 is 5,000 / 500 each time: the last one reverses what
    # remains, the same here, but a rounding that left a won behind would show above.
    assert refund_split(33_333, sale, NOTHING, COMMISSION, VAT) == Split(33_333, 5_000, 500)


def test_the_final_refund_takes_the_rounding_remainder() -> None:
    sale = sale_split(3, 5000, 0)  # 1.5 → 2
    first = refund_split(1, sale, NOTHING, 5000, 0)  # 0.5 → 1
    second = refund_split(1, sale, first, 5000, 0)  # 0.5 → 1
    last = refund_split(1, sale, first + second, 5000, 0)
    assert (first.commission, second.commission, last.commission) == (1, 1, 0)
    assert first + second + last == sale


def test_usd_cents() -> None:
    sale = sale_split(1234, COMMISSION, VAT)  # 185.1 → 185 ; 18.5 → 19
    assert sale == Split(1234, 185, 19)
    assert sale.payable == 1030
    assert refund_split(234, sale, NOTHING, COMMISSION, VAT) == Split(234, 35, 4)  # 35.1, 3.5


def test_withholding_only_for_individuals_and_never_on_a_loss() -> None:
    assert withholding(108_550, WITHHOLDING, "individual") == 3_582
    assert withholding(108_550, WITHHOLDING, "business") == 0
    assert withholding(-5_000, WITHHOLDING, "individual") == 0


def test_a_negative_result_is_carried_not_paid() -> None:
    result = payout(
        carried_in=-10_000, gross_sales=0, refunds=20_000, commission=-3_000, vat=-300,
        withholding_bps=WITHHOLDING, tax_type="individual",
    )  # fmt: skip
    assert (result.amount, result.carried, result.withholding) == (0, -26_700, 0)
