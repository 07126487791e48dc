"""Benchmarks of the ledger against the raw limits of its stores: see benchmarks/README.md."""
