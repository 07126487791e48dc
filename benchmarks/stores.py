"""Throwaway stores for one run: a PostgreSQL database (created, then dropped) and a
temporary directory of SQLite files."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """Where throwaway databases are created (any database on the server will do)."""
    return os.environ.get("LEDGER_BENCH_POSTGRES_URL", DEFAULT_SERVER_URL)


def with_database(url: str, dbname: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{dbname}", query=""))


@dataclass(frozen=True)
class Store:
    """One backend of a run. `fresh(label)` gives an empty store's LEDGER_DATABASE_URL."""

    backend: str  # "postgres" or "sqlite"
    root: str  # PostgreSQL: the throwaway database's URL; SQLite: a directory

    def fresh(self, label: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{Path(self.root) / f'{label}.db'}"
        # One schema per label keeps phases apart inside the run's database.
        with psycopg.connect(self.root, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {label} CASCADE")
            conn.execute(f"CREATE SCHEMA {label}")
        return f"{self.root}?schema={label}"


def _admin_connection(url: str, patience: float = 120.0) -> psycopg.Connection[Any]:
    """A connection, waiting while the server is full (a test run may hold most slots)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)


@contextmanager
def postgres_store(admin_url: str) -> Iterator[Store]:
    name = f"ledger_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with _admin_connection(admin_url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield Store("postgres", with_database(admin_url, name))
    finally:
        with _admin_connection(admin_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def sqlite_store() -> Iterator[Store]:
    root = tempfile.mkdtemp(prefix="ledger-bench-")
    try:
        yield Store("sqlite", root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
