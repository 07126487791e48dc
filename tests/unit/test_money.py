import pytest

from ledger.money import CurrencyMismatchError, Money, is_payable_currency, minor_unit_exponent


def test_amounts_add_exactly_in_minor_units() -> None:
    assert Money(1999, "usd") + Money(1, "USD") == Money(2000, "USD")


def test_mixing_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatchError):
        Money(15000, "KRW") + Money(100, "USD")


@pytest.mark.parametrize("amount", [12.34, 15000.0, "15000", True])
def test_non_integer_amounts_are_refused(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(amount, "KRW")  # type: ignore[arg-type]


def test_invalid_currency_code_is_refused() -> None:
    with pytest.raises(ValueError):
        Money(1, "WON!")


def test_zero_decimal_currencies_format_without_minor_unit() -> None:
    assert minor_unit_exponent("KRW") == 0 and minor_unit_exponent("JPY") == 0
    assert Money(15000, "KRW").format() == "15,000 KRW"
    assert Money(123456, "USD").format() == "1,234.56 USD"
    assert Money(1234, "KWD").format() == "1.234 KWD"


@pytest.mark.parametrize("code", ["KRW", "USD", "JPY", "KWD", "EUR"])
def test_existing_currencies_are_payable(code: str) -> None:
    assert is_payable_currency(code)


@pytest.mark.parametrize("code", ["WON", "AAA", "XAU", "XTS", "XXX", "CLF", "krw"])
def test_made_up_funds_and_metal_codes_are_not_payable(code: str) -> None:
    assert not is_payable_currency(code)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (150000, "KRW", "₩150,000"),
        (4999, "USD", "$49.99"),
        (5, "USD", "$0.05"),
        (-1234, "EUR", "-€12.34"),
        (123456789, "JPY", "¥123,456,789"),
        (1234567, "KWD", "1,234.567 KWD"),  # no symbol here: the code, after the digits
    ],
)
def test_amounts_for_people_come_from_the_minor_units_exactly(
    amount: int, currency: str, shown: str
) -> None:
    assert Money(amount, currency).for_people() == shown
