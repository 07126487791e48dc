"""The words people read: one template per message kind and language, filled from its facts.

To change a text, edit `api/notify/templates/{kind}.{locale}.txt`: its blocks are the
`subject`, the `text` (the e-mail's body and the push notification's; paragraphs are
separated by an empty line), the `sms` (keep it short) and, where there is a retry link,
the `link` (the words on the e-mail's button). Texts are plain: nothing is escaped there;
the e-mail's HTML part is made from the text by `_email.html`, which escapes it. Amounts
arrive formatted for people (`₩150,000`, `$49.99`), from the integer minor units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from api.notify.channels import Rendered
from ledger.money import Money

TEMPLATES = Path(__file__).with_name("templates")
LOCALES = ("ko", "en")
DEFAULT_LOCALE = "ko"
# The kinds that offer the customer a way to pay again.
RETRY_KINDS = frozenset({"payment_failed", "payment_cancelled"})


class Texts:
    def __init__(self, retry_url: str | None = None, directory: Path = TEMPLATES) -> None:
        loader = FileSystemLoader(directory)
        # StrictUndefined: a template naming a fact that does not exist fails loudly (the
        # delivery is `dead` with the reason) rather than sending a blank.
        self._plain = Environment(loader=loader, autoescape=False, undefined=StrictUndefined)
        self._html = Environment(loader=loader, autoescape=True, undefined=StrictUndefined)
        self.retry_url = retry_url

    def render(
        self,
        message_id: str,
        kind: str,
        locale: str,
        facts: dict[str, Any],
        booking_id: str | None,
    ) -> Rendered:
        locale = locale if locale in LOCALES else DEFAULT_LOCALE
        url = self._retry_link(kind, booking_id)
        values = {**facts, **_amounts(facts), "url": url}
        blocks = _blocks(self._plain.get_template(f"{kind}.{locale}.txt"), values)
        html = self._html.get_template("_email.html").render(
            locale=locale,
            subject=blocks["subject"],
            paragraphs=[p.strip() for p in blocks["text"].split("\n\n") if p.strip()],
            url=url,
            link_text=blocks.get("link", ""),
        )
        return Rendered(
            message_id=message_id,
            subject=blocks["subject"],
            text=blocks["text"],
            html=html,
            sms=blocks["sms"],
            url=url,
            data={"kind": kind, "booking_id": booking_id},
        )

    def _retry_link(self, kind: str, booking_id: str | None) -> str | None:
        if kind not in RETRY_KINDS or not self.retry_url or booking_id is None:
            return None
        return self.retry_url.replace("{booking_id}", quote(booking_id, safe=""))


def _amounts(facts: dict[str, Any]) -> dict[str, str]:
    currency = str(facts["currency"])
    return {
        key: Money(int(facts[key]), currency).for_people()
        for key in ("amount", "refund_amount")
        if key in facts
    }


def _blocks(template: Template, values: dict[str, Any]) -> dict[str, str]:
    context = template.new_context(values)
    return {name: "".join(render(context)).strip() for name, render in template.blocks.items()}
