"""The words people read (api/notify/texts.py): each kind in Korean and English, amounts
formatted for people, a retry link only where one helps, HTML escaped, plain text not."""

from __future__ import annotations

from typing import Any

import pytest

from api.notify.texts import LOCALES, Texts

FACTS: dict[str, Any] = {
    "amount": 150000, "currency": "KRW", "customer_name": "김민지 <b>&",
    "booking_date": "2026-12-05", "order_id": "o-1", "provider": "toss",
    "reason": "카드 한도 초과", "code": "X", "period_start": "2026-11-01",
    "period_end": "2026-11-30", "statement_id": "s-1", "reference": "bank-77", "gross_sales": 1,
    "refund_amount": 50000, "refund_id": "r-1", "full": False,
}  # fmt: skip
KINDS = ("payment_completed", "payment_refunded", "payment_partially_refunded",
         "payment_failed", "payment_cancelled", "payment_reversed", "statement_closed",
         "payout_recorded")  # fmt: skip
RETRY = "https://app.example/bookings/{booking_id}/pay"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_every_part_in_every_language(kind: str, locale: str) -> None:
    rendered = Texts(RETRY).render("m-1", kind, locale, FACTS, "b-1")
    assert rendered.subject and rendered.text and rendered.sms and rendered.html
    assert "{{" not in rendered.text + rendered.subject + rendered.sms
    assert "\n" not in rendered.subject


def test_amounts_read_as_people_write_them() -> None:
    rendered = Texts().render("m-1", "payment_partially_refunded", "en",
                              {**FACTS, "currency": "USD", "amount": 4999, "refund_amount": 1000},
                              "b-1")  # fmt: skip
    assert rendered.subject == "Payment partly refunded: $10.00"
    assert "$10.00 of the payment of $49.99" in rendered.text


def test_a_failed_payment_links_to_paying_again_a_completed_one_does_not() -> None:
    texts = Texts(RETRY)
    failed = texts.render("m-1", "payment_failed", "ko", FACTS, "b 1/2")
    link = "https://app.example/bookings/b%201%2F2/pay"  # the id quoted: it cannot escape the path
    assert failed.url == link and link in failed.sms and f'href="{link}"' in failed.html
    assert texts.render("m-1", "payment_completed", "ko", FACTS, "b-1").url is None
    assert Texts(None).render("m-1", "payment_failed", "ko", FACTS, "b-1").url is None


def test_names_are_escaped_in_html_and_kept_as_they_are_in_plain_text() -> None:
    rendered = Texts().render("m-1", "payment_completed", "ko", FACTS, "b-1")
    assert "김민지 <b>&님이" in rendered.text
    assert "김민지 &lt;b&gt;&amp;님이" in rendered.html and "<b>&" not in rendered.html


def test_an_unknown_locale_falls_back_to_korean() -> None:
    rendered = Texts().render("m-1", "payment_completed", "fr", FACTS, "b-1")
    assert rendered.subject == "새 예약 결제: ₩150,000"
