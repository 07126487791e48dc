"""How events become bytes: the library's JSON, able to hold any text a provider sends."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder


def json_utf8(json_text: str) -> bytes:
    """JSON text as UTF-8, an unpaired surrogate written as JSON's own `\\udXXX` escape.

    Python's `json` emits such a code point raw when `ensure_ascii=False`, and strict UTF-8
    cannot encode it. Escaped, it decodes back to the same string; any text without one
    encodes to the same bytes as before. Only for JSON text: elsewhere the escape would be
    literal characters.
    """
    return json_text.encode("utf-8", "backslashreplace")


class AnyTextJSONTranscoder(JSONTranscoder):
    """JSONTranscoder that stores unpaired surrogates instead of failing on them.

    A provider's JSON may carry `"\\ud800"` (valid JSON, decoded by Python as a lone
    surrogate, which UTF-8 cannot encode): the library's `encode` raised, so the decline or
    refund that text came with could not be recorded. Here such a code point is written
    as its JSON escape, which decodes back to the same string; every other event encodes
    to exactly the bytes the library writes, so stored events and their hashes are unchanged.
    """

    def encode(self, obj: Any) -> bytes:
        return json_utf8(self.encoder.encode(obj))
