"""The money rules of settlement (CONTRACT.md, "Money owed"): pure integer arithmetic.

Amounts are integer minor units of one currency; rates are basis points (1 bps = 0.01 %).
Rounding is half up to the minor unit, applied per payment and per refund, never to a sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BPS = 10_000
TaxType = Literal["individual", "business"]


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers only.

    Half away from zero, so a negative amount rounds as the mirror of its positive and a
    reversal of -A is exactly minus the reversal of A.
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def bps_of(amount: int, bps: int) -> int:
    """round(amount * bps / 10000), half up."""
    return round_half_up(amount * bps, BPS)


@dataclass(frozen=True)
class Split:
    """How an amount divides: commission C, VAT V on C, and the trainer's share."""

    amount: int
    commission: int
    vat: int

    @property
    def payable(self) -> int:
        return self.amount - self.commission - self.vat

    def __add__(self, other: Split) -> Split:
        return Split(
            self.amount + other.amount, self.commission + other.commission, self.vat + other.vat
        )

    def __sub__(self, other: Split) -> Split:
        return Split(
            self.amount - other.amount, self.commission - other.commission, self.vat - other.vat
        )


NOTHING = Split(0, 0, 0)


def sale_split(amount: int, commission_bps: int, vat_bps: int) -> Split:
    """A completed payment of A: C = round(A * bps), V = round(C * vat_bps)."""
    commission = bps_of(amount, commission_bps)
    return Split(amount, commission, bps_of(commission, vat_bps))


def refund_split(
    refund: int, sale: Split, reversed_so_far: Split, commission_bps: int, vat_bps: int
) -> Split:
    """What a refund of `refund` reverses: in proportion, at the sale's rates; the refund
    that brings the payment to fully refunded reverses exactly what remains, so a fully
    refunded payment nets to zero on every account whatever the rounding did."""
    if reversed_so_far.amount + refund >= sale.amount:
        return sale - reversed_so_far
    return sale_split(refund, commission_bps, vat_bps)


def withholding(payable_before_tax: int, withholding_bps: int, tax_type: TaxType) -> int:
    """W = round(max(0, payable before tax) * withholding_bps) for an individual; 0 for a
    business (it files its own tax)."""
    if tax_type != "individual":
        return 0
    return bps_of(max(0, payable_before_tax), withholding_bps)


@dataclass(frozen=True)
class Payout:
    before_tax: int
    withholding: int
    amount: int  # paid out, never negative
    carried: int  # negative remainder carried into the trainer's next statement


def payout(
    *,
    carried_in: int,
    gross_sales: int,
    refunds: int,
    commission: int,
    vat: int,
    withholding_bps: int,
    tax_type: TaxType,
) -> Payout:
    """payout = max(0, carried_in + gross - refunds - commission - vat - withholding)."""
    before_tax = carried_in + gross_sales - refunds - commission - vat
    withheld = withholding(before_tax, withholding_bps, tax_type)
    result = before_tax - withheld
    return Payout(before_tax, withheld, max(0, result), min(0, result))
