"""`python -m benchmarks [--quick] [--json out.json]`: see benchmarks/README.md."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.config import SIZES
from benchmarks.machine import describe
from benchmarks.recorders import CHOICES, ENV, chosen
from benchmarks.report import render
from benchmarks.stores import postgres_store, server_url, sqlite_store
from benchmarks.suite import SECTIONS, run_store


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (same as --sizes quick)")
    parser.add_argument("--sizes", choices=sorted(SIZES), help="tiny, quick or full (default)")
    parser.add_argument(
        "--json", type=Path, help="write results here (default bench-results/SIZES.json)"
    )
    parser.add_argument("--stores", default="postgres,sqlite", help="comma-separated backends")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument(
        "--postgres-url",
        default=server_url(),
        help="server on which the run's throwaway database is created ($LEDGER_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--recorder",
        choices=CHOICES,
        default=chosen(),
        help="PostgreSQL event recorder: ours (default), ours without group commit (ungrouped) "
        "or the library's (before/after runs)",
    )
    args = parser.parse_args(argv)
    os.environ[ENV] = args.recorder  # subprocesses (ledger serve) make the same choice
    args.sizes = args.sizes or ("quick" if args.quick else "full")
    args.json = args.json or Path("bench-results") / f"{args.sizes}.json"
    return args


def save(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Each store in turn; the JSON is rewritten after each section, so a long run that
    fails late keeps what it measured."""
    sizes = SIZES[args.sizes]
    sections = tuple(s for s in args.sections.split(",") if s)
    results: dict[str, Any] = {"meta": describe(args.postgres_url, sizes)}
    t0 = time.perf_counter()
    for backend in [s for s in args.stores.split(",") if s]:
        context = postgres_store(args.postgres_url) if backend == "postgres" else sqlite_store()
        results[backend] = {}

        def checkpoint() -> None:
            results["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
            results["meta"]["load_average_end"] = describe(None, sizes)["load_average_start"]
            save(args.json, results)

        with context as store:
            run_store(store, sizes, sections, results[backend], checkpoint)
    return results


def main(argv: list[str] | None = None) -> int:
    # A plain `kill` then unwinds like Ctrl-C: servers stop and the throwaway database is dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    args = parse(sys.argv[1:] if argv is None else argv)
    results = run(args)
    print(render(results))
    print(f"\nwrote {args.json} in {results['meta']['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
