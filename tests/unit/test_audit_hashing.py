"""The hash chain's arithmetic, as an auditor would re-implement it, and the offline
verifier of exports: no I/O."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import uuid4

from ledger.audit import (
    GENESIS,
    canonical_bytes,
    decode_state,
    event_id,
    link_hash,
    record,
    verify_export,
)

AGGREGATE = uuid4()


def chain(count: int) -> list[dict[str, Any]]:
    items, prev = [], GENESIS
    for n in range(1, count + 1):
        at = {"_type_": "datetime_iso", "_data_": f"2026-11-25T0{n}:00:00+00:00"}
        state = json.dumps({"timestamp": at, "amount": n * 1000, "name": "김민수"}).encode()
        item = record(n * 10, AGGREGATE, n, "ledger.payment:Payment.Refunded", state)
        item |= {"prev_hash": prev, "hash": link_hash(prev, item)}
        items.append(item)
        prev = item["hash"]
    return items


def lines(items: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(i, ensure_ascii=False) for i in items]


def test_the_hash_is_sha256_of_the_previous_digest_and_canonical_json() -> None:
    item = chain(1)[0]
    names = ("position", "event_id", "aggregate_id", "version", "type", "timestamp", "data")
    fields = {k: item[k] for k in names}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_bytes(item) == canonical.encode("utf-8")
    assert "김민수".encode() in canonical_bytes(item)  # not \\u-escaped
    expected = hashlib.sha256(bytes(32) + canonical.encode("utf-8")).hexdigest()
    assert item["hash"] == expected


def test_record_takes_the_timestamp_from_the_stored_json_and_a_stable_event_id() -> None:
    item = chain(1)[0]
    assert item["timestamp"] == "2026-11-25T01:00:00+00:00"
    assert item["event_id"] == event_id(AGGREGATE, 1) == event_id(str(AGGREGATE), 1)
    assert event_id(AGGREGATE, 2) != item["event_id"]


def test_bytes_that_are_not_json_still_decode_to_something_hashable() -> None:
    data = decode_state(b"\xff{not json")
    assert data == {"_undecodable_base64_": "/3tub3QganNvbg=="}
    canonical_bytes(record(1, AGGREGATE, 1, "t", b"\xff{not json"))


def test_an_intact_export_verifies() -> None:
    verdict = verify_export(lines(chain(4)))
    assert (verdict.ok, verdict.events_checked, verdict.head_position) == (True, 4, 40)
    assert verify_export([]).ok and verify_export([]).head_hash == GENESIS


def test_a_removed_line_or_swapped_lines_fail_at_the_first_break() -> None:
    text = lines(chain(4))
    removed = verify_export(text[:1] + text[2:])
    assert (removed.ok, removed.first_bad_position, removed.events_checked) == (False, 30, 1)
    swapped = verify_export([text[0], text[2], text[1], text[3]])
    assert (swapped.ok, swapped.first_bad_position) == (False, 30)


def test_an_edited_field_or_a_recomputed_hash_alone_fails() -> None:
    items = chain(3)
    items[1]["data"]["amount"] = 1
    assert verify_export(lines(items)).first_bad_position == 20
    items[1]["hash"] = link_hash(items[1]["prev_hash"], items[1])  # the forger re-hashes one link
    assert verify_export(lines(items)).first_bad_position == 30  # the next link no longer fits


def test_unchained_events_may_only_trail_an_export() -> None:
    items = chain(3)
    items[2] |= {"hash": None, "prev_hash": None}
    trailing = verify_export(lines(items))
    assert (trailing.ok, trailing.events_checked, trailing.unchained) == (True, 2, 1)
    items[1] |= {"hash": None, "prev_hash": None}
    items[2] = chain(3)[2]
    assert not verify_export(lines(items)).ok
