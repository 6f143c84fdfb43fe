from __future__ import annotations

import socket

import psycopg
import pytest

from ccplatform.embedded_db import EmbeddedPostgres


@pytest.fixture
def data_dir(tmp_path_factory):  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("embedded-pg")


def test_embedded_postgres_starts_on_a_free_loopback_port_and_stops_cleanly(data_dir):  # type: ignore[no-untyped-def]
    server = EmbeddedPostgres(data_dir)
    assert not server.is_running()
    url = server.start()
    try:
        port = server.postmaster().port
        assert url == f"postgres://postgres@127.0.0.1:{port}/ccplatform"
        assert port != 5432
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "SELECT current_database(), inet_server_addr()::text"
            ).fetchone() == ("ccplatform", "127.0.0.1/32")
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        # A second process finds the running server instead of starting another.
        assert EmbeddedPostgres(data_dir).start() == url
    finally:
        assert server.stop() is True
    assert not server.is_running()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the port is still open after stop"
    assert server.stop() is False  # stopping twice is harmless
    # Data survives a restart (possibly on another port).
    url2 = server.start()
    try:
        with psycopg.connect(url2) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
    finally:
        server.stop()
