"""The printed table: one block per section, stores side by side where they share rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks.reads import ANALYTICS

LAG_VIEWS = ("revenue", "payments_table")  # what the dashboard reads


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(title: str, header: list[str], rows: Iterable[list[Any]]) -> str:
    cells = [header, *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [f"\n{title}"]
    for i, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if j else c.ljust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


INGESTION_HEADER = ["conns", "raw tx/s", "raw p50", "raw p99", "append tx/s", "events/s",
                    "ratio"]  # fmt: skip
WEBHOOK_HEADER = ["conns", "raw tx/s", "ack/s", "p50 ms", "p99 ms", "ratio", "applied/s",
                  "ratio", "stats lag p50", "stats lag p99", "errors", "drain s"]  # fmt: skip
WEBHOOK_KEYS = ("deliveries_per_s", "p50_ms", "p99_ms", "ratio_to_baseline", "applied_per_s",
                "applied_ratio_to_baseline", "stats_lag_p50_ms", "stats_lag_p99_ms", "errors",
                "inbox_drain_after_load_s")  # fmt: skip
HISTORY_HEADER = ["payments", "events", "load ev/s", "rebuild s", "rebuild ev/s", "RSS MB",
                  "stats p50/p99", "page p50/p99", "trainer p50/p99", "balances p50/p99",
                  "statement p50/p99", "naive p50/p99"]  # fmt: skip
READ_NAMES = (
    "stats", "payments_completed_stripe", "payments_trainer_failed", "balances", "statement",
)  # fmt: skip


def _pick(row: dict[str, Any], *keys: str) -> list[Any]:
    return [row.get(key, "-") for key in keys]


def ingestion(store: str, out: dict[str, Any]) -> str:
    rows = []
    for level, raw in out.get("baseline", {}).items():
        append = out.get("append", {}).get(level, {})
        rows.append(
            [
                level,
                *_pick(raw, "commits_per_s", "p50_ms", "p99_ms"),
                *_pick(append, "commits_per_s", "events_per_s", "ratio_to_baseline"),
            ]
        )
    title = f"[{store}] ingestion: raw INSERT+COMMIT vs ledger commands"
    return table(title, INGESTION_HEADER, rows)


def webhooks(store: str, out: dict[str, Any], section: str = "webhooks") -> str:
    hooks = out.get(section, {})
    rows = []
    for level, hook in hooks.items():
        if not isinstance(hook, dict):
            continue
        raw = out.get("baseline", {}).get(level, {})
        rows.append([level, *_pick(raw, "commits_per_s"), *_pick(hook, *WEBHOOK_KEYS)])
    skipped = hooks.get("skipped")
    note = f"  (skipped: {skipped})" if skipped else ""
    served = LAYOUTS[section]
    title = (
        f"[{store}] HTTP webhooks, wrk → {served}: acknowledged, then applied; stats lag"
        f" = received → revenue view (ms){note}"
    )
    return table(title, WEBHOOK_HEADER, rows)


LAYOUTS = {
    "webhooks": "ledger serve",
    "webhooks_apart": "ledger serve --no-projections + ledger project",
}


def lag(store: str, out: dict[str, Any], section: str = "webhooks") -> str:
    rows = []
    for level, hook in out.get(section, {}).items():
        if not isinstance(hook, dict):
            continue
        for view, stats in hook["lag"].items():
            mark = "*" if view in LAG_VIEWS else ""
            rows.append([level, f"{view}{mark}", *_pick(stats, "p50_ms", "p99_ms", "max_ms")])
    title = (
        f"[{store}] projection lag after a webhook is received, {LAYOUTS[section]}, ms"
        " (* dashboard views)"
    )
    return table(title, ["conns", "view", "p50", "p99", "max"], rows)


def outbox(store: str, out: dict[str, Any]) -> str:
    o = out.get("outbox", {})
    keys = ("raw_per_s", "messages", "messages_per_s", "ratio_to_raw", "lag_p50_ms", "lag_p99_ms")
    rows = [_pick(o, *keys)] if o else []
    title = (
        f"[{store}] outbox → local SMTP server: raw smtplib vs ledger serve's worker (messages/s);"
        " lag = completion saved → e-mail received (ms)"
    )
    header = ["raw msg/s", "messages", "msg/s", "ratio", "lag p50", "lag p99"]
    return table(title, header, rows)


def history(store: str, out: dict[str, Any]) -> str:
    h = out.get("history", {})
    rows = []
    for size, load in h.get("load", {}).items():
        rebuild, reads = h["rebuild"][size], h["reads"][size]
        rows.append(
            [size, *_pick(load, "events", "events_per_s")]
            + _pick(rebuild, "seconds", "events_per_s", "peak_rss_mb")
            + [_p(reads.get(name, {})) for name in READ_NAMES]
            + [_p(h["naive"][size])]
        )
    first = [
        [size, *(_p(reads.get(name, {})) for name in READ_NAMES)]
        for size, reads in h.get("reads_right_after_rebuild", {}).items()
    ]
    fresh = table(f"[{store}] the same reads straight after the rebuild (ms)",
                  ["payments", *HISTORY_HEADER[6:11]], first)  # fmt: skip
    ratios = [
        [size, *(reads.get(name, {}).get("ratio_to_raw_commit", "-") for name in READ_NAMES)]
        for size, reads in h.get("reads", {}).items()
    ]
    title = f"[{store}] the reads after VACUUM ANALYZE, p50 in raw commits (1 connection, p50)"
    in_commits = table(title, ["payments", *(n.split(" ")[0] for n in HISTORY_HEADER[6:11])],
                       ratios)  # fmt: skip
    return table(title_history(store), HISTORY_HEADER, rows) + "\n" + fresh + "\n" + in_commits


def analytics(store: str, out: dict[str, Any]) -> str:
    """The analytics, search and export reads at each history size, p50/p99 (ms)."""
    names = tuple(ANALYTICS)
    rows = [
        [size, *(_p(reads.get(name, {})) for name in names)]
        for size, reads in out.get("history", {}).get("reads", {}).items()
    ]
    header = ["payments", *(name.replace("analytics_", "") for name in names)]
    title = f"[{store}] analytics, search and CSV reads after VACUUM ANALYZE, p50/p99 (ms)"
    return table(title, header, rows)


def title_history(store: str) -> str:
    return (
        f"[{store}] history: bulk load, `ledger rebuild`, dashboard reads after VACUUM ANALYZE (ms)"
    )


def _p(stats: dict[str, Any]) -> str:
    if "skipped" in stats:
        return "skipped"
    if "p50_ms" not in stats:
        return "-"
    return f"{stats['p50_ms']:.1f}/{stats['p99_ms']:.1f}"


def render(results: dict[str, Any]) -> str:
    parts = []
    for store in ("postgres", "sqlite"):
        if store in results:
            out = results[store]
            parts += [ingestion(store, out), webhooks(store, out), lag(store, out)]
            parts += [webhooks(store, out, "webhooks_apart"), lag(store, out, "webhooks_apart")]
            parts.append(outbox(store, out))
            parts.append(history(store, out))
            parts.append(analytics(store, out))
    return "\n".join(parts)
