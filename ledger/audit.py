"""The audit hash chain's arithmetic: pure functions, no database.

The follower that records the chain, `ledger verify`, the audit API and the offline
verifier of an export all use these, so an export can be checked with nothing but this
module: every hashed byte is a field of the exported item.

    canonical = JSON of {position, event_id, aggregate_id, version, type, timestamp, data}
                (sorted keys, no spaces, UTF-8, non-ASCII kept as is)
    hash      = SHA-256(bytes.fromhex(prev_hash) || canonical), hex; the first prev_hash is
                GENESIS (64 zeros)
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.transcoding import json_utf8

GENESIS = "0" * 64
EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledger.invalid/audit-events")
HASHED_FIELDS = ("position", "event_id", "aggregate_id", "version", "type", "timestamp", "data")


def event_id(aggregate_id: UUID | str, version: int) -> str:
    """A stable id per stored event: the same (aggregate, version) always gives the same id."""
    return str(uuid5(EVENT_NAMESPACE, f"{aggregate_id}:{version}"))


def decode_state(state: bytes) -> Any:
    """The stored JSON as it is (transcoder markers such as `_type_` included).

    Never raises: bytes that are not JSON (a tampered row) still get a deterministic value,
    so they hash to something that simply does not match.
    """
    try:
        return json.loads(state.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"_undecodable_base64_": base64.b64encode(state).decode("ascii")}


def timestamp_of(data: Any) -> str | None:
    """The event's ISO timestamp from its stored JSON (the transcoder wraps datetimes)."""
    value = data.get("timestamp") if isinstance(data, dict) else None
    if isinstance(value, dict):
        value = value.get("_data_")
    return value if isinstance(value, str) else None


def record(
    position: int, aggregate_id: UUID | str, version: int, topic: str, state: bytes
) -> dict[str, Any]:
    """The exported fields of one stored event (without its hash)."""
    aggregate = str(UUID(str(aggregate_id)))
    data = decode_state(state)
    return {
        "position": position,
        "event_id": event_id(aggregate, version),
        "aggregate_id": aggregate,
        "version": version,
        "type": topic,
        "timestamp": timestamp_of(data),
        "data": data,
    }


def canonical_bytes(item: Mapping[str, Any]) -> bytes:
    fields = {name: item.get(name) for name in HASHED_FIELDS}
    return json_utf8(json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def link_hash(prev_hash: str, item: Mapping[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_bytes(item)).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """The answer of a verification. `head_hash` is the hash of the last intact link
    (GENESIS, or an export's first prev_hash, when none was checked)."""

    ok: bool
    events_checked: int
    head_hash: str
    first_bad_position: int | None = None
    head_position: int | None = None
    problem: str | None = None
    unchained: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "head_hash": self.head_hash,
            "first_bad_position": self.first_bad_position,
            "head_position": self.head_position,
        }


class ChainWalk:
    """Checks links one after another; the first broken one ends the walk."""

    def __init__(self, anchor: str = GENESIS) -> None:
        self.head_hash = anchor
        self.head_position: int | None = None
        self.checked = 0

    def check(self, item: Mapping[str, Any], prev_hash: Any, stored_hash: Any) -> str | None:
        """None when `item` links correctly after the previous one, else what is wrong."""
        position = item.get("position")
        if self.head_position is not None and (
            not isinstance(position, int) or position <= self.head_position
        ):
            return f"position {position} does not follow {self.head_position}"
        if prev_hash != self.head_hash:
            return "prev_hash does not match the previous event's hash"
        if stored_hash != link_hash(self.head_hash, item):
            return "hash does not match the event's contents"
        self.head_hash, self.head_position = str(stored_hash), position
        self.checked += 1
        return None

    def bad(self, position: int | None, problem: str, unchained: int = 0) -> Verdict:
        return Verdict(
            False, self.checked, self.head_hash, position, self.head_position, problem, unchained
        )

    def good(self, unchained: int = 0) -> Verdict:
        return Verdict(
            True, self.checked, self.head_hash, None, self.head_position, None, unchained
        )


def verify_export(lines: Iterable[str | bytes]) -> Verdict:
    """Check an export (`ledger export`, JSON lines) with no database.

    The first line's prev_hash anchors the walk, so an export made `--after N` verifies from
    there (compare that anchor with the last hash of the previous export). Events not chained
    yet (hash null) may only trail the file; they are counted, not checked.
    """
    walk: ChainWalk | None = None
    unchained = 0
    for number, item in _parse(lines):
        if item is None:
            return (walk or ChainWalk()).bad(None, f"line {number} is not a JSON object in UTF-8")
        position = item.get("position")
        if item.get("hash") is None:
            unchained += 1
            continue
        walk = walk or ChainWalk(str(item.get("prev_hash")))
        if unchained:
            return walk.bad(position, f"line {number}: chained event after unchained ones")
        if item.get("event_id") != _expected_event_id(item):
            return walk.bad(position, f"line {number}: event_id does not match aggregate/version")
        problem = walk.check(item, item.get("prev_hash"), item.get("hash"))
        if problem:
            return walk.bad(
                position if isinstance(position, int) else None, f"line {number}: {problem}"
            )
    return (walk or ChainWalk()).good(unchained)


def _parse(lines: Iterable[str | bytes]) -> Iterator[tuple[int, dict[str, Any] | None]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # Bytes are decoded here, so an edit that breaks UTF-8 is a bad line, not a crash.
            item = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
        except ValueError:
            item = None
        yield number, item if isinstance(item, dict) else None


def _expected_event_id(item: Mapping[str, Any]) -> str | None:
    try:
        return event_id(UUID(str(item.get("aggregate_id"))), int(item.get("version")))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
