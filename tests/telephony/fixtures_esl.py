"""Load the FreeSWITCH ESL capture transcripts (``*.jsonl``) for the ESL tests.

Location: ``$CCP_SHARED_DIR/fixtures/freeswitch`` (default ``<repo>/../shared``).
A transcript line is ``{"t", "dir", "data", "conn"?, "event"?}``; the
``fs->client`` chunks of one connection, concatenated, are the byte stream that
FreeSWITCH sent on it (``conn`` missing means the file has one connection).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIR = (
    Path(os.environ.get("CCP_SHARED_DIR", REPO_ROOT.parent / "shared")) / "fixtures" / "freeswitch"
)
FS_TO_CLIENT = "fs->client"
CLIENT_TO_FS = "client->fs"


@dataclass
class Connection:
    """One TCP connection of a transcript: chunks in each direction, in order."""

    label: str | None
    fs_chunks: list[bytes] = field(default_factory=list)
    client_chunks: list[bytes] = field(default_factory=list)
    # True if the transcript records FreeSWITCH closing the socket (recv() == 0).
    peer_closed: bool = False

    @property
    def fs_stream(self) -> bytes:
        """Everything FreeSWITCH sent on this connection."""
        return b"".join(self.fs_chunks)


def transcript_names() -> list[str]:
    """All transcript file names, sorted."""
    return sorted(p.name for p in FIXTURE_DIR.glob("*.jsonl"))


@cache
def load_records(name: str) -> tuple[dict, ...]:
    """The raw JSON records of a transcript."""
    with (FIXTURE_DIR / name).open(encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


@cache
def load_connections(name: str) -> dict[str | None, Connection]:
    """The transcript's connections by ``conn`` label (``None`` if unlabelled), in order."""
    conns: dict[str | None, Connection] = {}
    for rec in load_records(name):
        if rec["dir"] not in (FS_TO_CLIENT, CLIENT_TO_FS):
            continue
        label = rec.get("conn")
        conn = conns.setdefault(label, Connection(label))
        data = rec["data"].encode("utf-8")
        if rec["dir"] == FS_TO_CLIENT:
            if not data and "EOF" in rec.get("event", ""):
                conn.peer_closed = True
            elif data:
                conn.fs_chunks.append(data)
        else:
            conn.client_chunks.append(data)
    return conns


def fs_stream(name: str, conn: str | None = None) -> bytes:
    """The concatenated fs->client bytes of one connection of a transcript."""
    return load_connections(name)[conn].fs_stream


def api_index() -> list[dict]:
    """``api/index.json``: one entry per captured api command and its body file."""
    return json.loads((FIXTURE_DIR / "api" / "index.json").read_text(encoding="utf-8"))
