"""The database benchmarks run on: their own, never the project's dev or test database."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/ccp_bench"


def bench_url() -> str:
    """DATABASE_URL (or the default), refused unless its name says it is for benchmarks."""
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to run on database {name!r}: the benchmark needs its own (…bench…)")
    os.environ["DATABASE_URL"] = url
    return url


def prepare_database(url: str, *, recreate: bool) -> None:
    """Create the database if missing; with ``recreate``, drop it first."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if recreate:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
