"""Exact money: integer minor units plus an ISO 4217 currency, never a float."""

from __future__ import annotations

from dataclasses import dataclass

from iso4217 import Currency

# Currencies whose minor unit is the major unit (ISO 4217 exponent 0).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
# Currencies with three decimals; everything else has two.
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


# Symbols that read unambiguously in the marketplace's two languages.
SYMBOLS = {"KRW": "₩", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were combined."""


def minor_unit_exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def normalise_currency(currency: str) -> str:
    code = currency.strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    return code


def is_payable_currency(code: str) -> bool:
    """An ISO 4217 currency that exists and that we know how to count.

    Funds, metals and test codes (no minor unit in ISO 4217) and the few funds whose unit
    differs from our table (CLF, UYI, UYW) are refused: an amount in them would be misread.
    """
    try:
        iso = Currency(code)
    except ValueError:
        return False
    return iso.exponent is not None and iso.exponent == minor_unit_exponent(code)


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass; a float would silently lose exactness.
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError(f"amount must be an integer in minor units, got {self.amount_minor!r}")
        object.__setattr__(self, "currency", normalise_currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _check_same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check_same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check_same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check_same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._check_same(other)
        return self.amount_minor <= other.amount_minor

    def for_people(self) -> str:
        """What a person reads: '₩150,000', '$49.99', '€12.00'; '1,234.567 KWD' for a
        currency without a symbol here. Exact: digits from the integer minor units."""
        sign, digits = self._digits()
        symbol = SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {self.currency}"

    def _digits(self) -> tuple[str, str]:
        exponent = minor_unit_exponent(self.currency)
        sign = "-" if self.amount_minor < 0 else ""
        major, minor = divmod(abs(self.amount_minor), 10**exponent)
        return sign, f"{major:,}" if exponent == 0 else f"{major:,}.{minor:0{exponent}d}"

    def format(self) -> str:
        """Human form for notifications, e.g. '15,000 KRW' or '12.34 USD'."""
        sign, digits = self._digits()
        return f"{sign}{digits} {self.currency}"
