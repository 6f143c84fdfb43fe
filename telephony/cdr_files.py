"""Import the CDR files FreeSWITCH left in its err-log-dir when posting failed.

mod_json_cdr writes ``<err-log-dir>/[a_]<leg uuid>.cdr.json`` after its last failed try.
Each file is parsed and stored like a post (same idempotency on the leg UUID, same
quarantine); then it is moved to ``done/``, or, if it cannot be read as a CDR, to
``rejected/`` beside a ``<name>.reason.txt``. Nothing is deleted, so a rejected file can be
fixed and moved back. Running it again, or while FreeSWITCH writes, is safe: files younger
than ``min_age`` are left for the next run.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cdrs.models import RawCdr
from telephony import actions
from telephony.cdr_format import CdrFormatError, decode_payload, parse_cdr
from telephony.models import SwitchNode

log = logging.getLogger("telephony.cdr")

DONE_DIR = "done"
REJECTED_DIR = "rejected"


@dataclass
class SweepReport:
    counts: Counter[str] = field(default_factory=Counter)
    rejected: dict[str, str] = field(default_factory=dict)  # file name -> reason

    def __str__(self) -> str:
        parts = [f"{n} {what}" for what, n in sorted(self.counts.items())]
        return ", ".join(parts) or "nothing to import"


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():  # the same leg left twice: keep both, never overwrite
        target = folder / f"{path.stem}.{time.time_ns()}{path.suffix}"
    os.replace(path, target)
    return target


def _node_for(parsed_switchname: str, node: SwitchNode | None) -> SwitchNode | None:
    if node is not None:
        return node
    return SwitchNode.objects.filter(name=parsed_switchname).first()


def sweep_cdr_dir(
    directory: Path,
    *,
    node: SwitchNode | None = None,
    max_bytes: int,
    min_age: float = 10.0,
    now: float | None = None,
) -> SweepReport:
    """Import every ``*.json`` file directly in ``directory`` (see the module docstring)."""
    report = SweepReport()
    now = time.time() if now is None else now
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".json"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # taken by a concurrent sweep
        if now - stat.st_mtime < min_age:
            report.counts["too recent, left for next run"] += 1
            continue
        try:
            if stat.st_size > max_bytes:
                raise CdrFormatError(f"file larger than {max_bytes} bytes (CDR_MAX_BYTES)")
            parsed = parse_cdr(decode_payload(path.read_bytes()), expected_uuid=_uuid_of(path))
        except CdrFormatError as exc:
            target = _move(path, directory / REJECTED_DIR)
            target.with_name(target.name + ".reason.txt").write_text(f"{exc}\n")
            log.warning("CDR file %s rejected: %s", path, exc)
            report.counts["rejected"] += 1
            report.rejected[path.name] = str(exc)
            continue
        outcome = actions.do_store_cdr(
            parsed, node=_node_for(parsed.switchname, node), source=RawCdr.Source.FILE
        )
        _move(path, directory / DONE_DIR)
        report.counts[outcome.outcome] += 1
    return report


def _uuid_of(path: Path) -> str | None:
    """The leg UUID in a ``[a_]<uuid>.cdr.json`` name, to cross-check the body; else None."""
    name = path.name
    if not name.endswith(".cdr.json"):
        return None
    stem = name[: -len(".cdr.json")]
    stem = stem[2:] if stem.startswith("a_") else stem
    try:
        return str(uuid.UUID(stem))
    except ValueError:
        return None
