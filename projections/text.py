"""Text as the views store it: any string an event holds, including what a database refuses.

PostgreSQL's text and jsonb cannot hold NUL, and neither store can encode an unpaired
surrogate as UTF-8; one such character in a customer name or a provider's decline message
stopped a view for good, since the runner retried the same batch forever. Events are facts,
so the views store such text escaped, reversibly: a backslash is doubled, NUL and
surrogates become `\\uXXXX`. Reads undo it, so callers see the event's own text; only
the stored form differs, and only for strings holding a backslash or such a character.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NEEDS_ESCAPE = re.compile("[\\\\\x00\ud800-\udfff]")
_ESCAPED = re.compile(r"\\(\\|u[0-9a-f]{4})")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\u{ord(char):04x}"


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    return "\\" if code == "\\" else chr(int(code[1:], 16))


def to_column(text: str) -> str:
    """The stored form of `text` (the same string when nothing needs escaping)."""
    return _NEEDS_ESCAPE.sub(_escape, text) if _NEEDS_ESCAPE.search(text) else text


def from_column(stored: str) -> str:
    """The text whose stored form is `stored`."""
    return _ESCAPED.sub(_unescape, stored) if "\\" in stored else stored


def _stored(value: Any) -> Any:
    return to_column(value) if isinstance(value, str) else value


def _read(value: Any) -> Any:
    return from_column(value) if isinstance(value, str) else value


def stored_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (or a statement's parameters) with every string in its stored form."""
    return {name: _stored(value) for name, value in row.items()}


def read_row(row: Any) -> dict[str, Any]:
    """A row as read from a table (a mapping, or sqlite3.Row), with every string as the event
    had it."""
    return {name: _read(value) for name, value in dict(row).items()}
