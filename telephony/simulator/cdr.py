"""CDR posting the way mod_json_cdr does it (fixtures ``cdr/``, README fact 20).

One POST per leg after CHANNEL_HANGUP_COMPLETE::

    POST /cdr?uuid=<leg uuid> HTTP/1.1
    Host, User-Agent: freeswitch-json/1.0, Accept: */*, Content-Length,
    Content-Type: application/x-www-form-urlencoded   (the body is raw JSON)

The body has ``core-uuid``, ``switchname``, ``channel_data``, ``callStats``,
``variables`` (URL-encoded values with ``encode_values``), ``app_log`` (when
applications ran) and ``callflow``. When the POST fails (connection refused,
non-2xx, timeout) after ``retries`` retries, the identical JSON is written to
``<err_log_dir>/<uuid>.cdr.json``. The ``disk_full`` fault makes that write
fail (the CDR is then lost and counted, as FreeSWITCH would only log it).

Only loopback URLs are accepted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .esl_server import _is_loopback
from .model import CHANNEL_STATES, Channel
from .switch import Switch
from .wire import url_encode

log = logging.getLogger(__name__)


def build_cdr(switch: Switch, ch: Channel, *, encode_values: bool = True) -> dict[str, object]:
    """The mod_json_cdr document of one leg (after its hangup)."""
    p = ch.profile

    def enc(value: str) -> str:
        return url_encode(value) if encode_values else value

    times = {
        "created_time": str(ch.created_us),
        "profile_created_time": str(ch.created_us),
        "progress_time": str(ch.progress_us),
        "progress_media_time": str(ch.progress_media_us),
        "answered_time": str(ch.answered_us),
        "bridged_time": str(ch.bridged_us),
        "last_hold_time": str(ch.last_hold_us),
        "hold_accum_time": str(ch.hold_accum_us),
        "hangup_time": str(ch.hangup_us),
        "resurrect_time": "0",
        "transfer_time": str(ch.transfer_us),
    }
    caller_profile = {
        "username": "",
        "dialplan": p.dialplan,
        "caller_id_name": p.caller_id_name,
        "ani": p.ani,
        "aniii": "",
        "caller_id_number": p.caller_id_number,
        "network_addr": "",
        "rdnis": p.rdnis,
        "destination_number": p.destination_number,
        "uuid": ch.uuid,
        "source": p.source,
        "context": p.context,
        "chan_name": ch.name,
    }
    flow: dict[str, object] = {"dialplan": p.dialplan, "profile_index": str(p.profile_index)}
    if ch.extension is not None:
        name, apps = ch.extension
        flow["extension"] = {
            "name": name,
            "number": name,
            "applications": [{"app_name": a, "app_data": d} for a, d in apps],
        }
    flow["caller_profile"] = caller_profile
    flow["times"] = times
    doc: dict[str, object] = {
        "core-uuid": switch.core_uuid,
        "switchname": switch.hostname,
        "channel_data": {
            "state": ch.state if ch.state != "CS_DESTROY" else "CS_REPORTING",
            "direction": p.direction,
            "state_number": str(CHANNEL_STATES.index("CS_REPORTING")),
            "flags": "0=1;40=1;42=1;55=1;160=1",
            "caps": "",
        },
        "callStats": {},
        "variables": {k: enc(v) for k, v in ch.variables.items()},
    }
    if ch.app_log:
        doc["app_log"] = {
            "applications": [
                {"app_name": a, "app_data": d, "app_stamp": str(t)} for a, d, t in ch.app_log
            ]
        }
    doc["callflow"] = [flow]
    return doc


@dataclass
class CdrPoster:
    """Posts every leg's CDR to ``url``; falls back to ``err_log_dir``.

    Attach with :meth:`attach`. Counters: ``posted``, ``written`` (to the
    error-log folder), ``lost`` (the write failed too).
    """

    url: str
    err_log_dir: Path
    encode_values: bool = True
    retries: int = 0
    timeout: float = 5.0
    disk_full: bool = False
    posted: int = 0
    written: int = 0
    lost: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname or not _is_loopback(parts.hostname):
            raise ValueError("CDR URL must be http:// on a loopback address")
        self.err_log_dir = Path(self.err_log_dir)

    def attach(self, switch: Switch) -> None:
        """Post a CDR after every CHANNEL_HANGUP_COMPLETE of ``switch``."""

        def hook(ch: Channel) -> None:
            body = json.dumps(
                build_cdr(switch, ch, encode_values=self.encode_values),
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode("utf-8")
            task = asyncio.ensure_future(self.deliver(ch.uuid, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        switch.on_hangup_complete.append(hook)
        switch.cdr_poster = self

    async def drain(self) -> None:
        """Wait until every pending CDR was posted or written."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def deliver(self, uuid: str, body: bytes) -> None:
        """POST (with retries), else write ``<uuid>.cdr.json``."""
        for _attempt in range(self.retries + 1):
            try:
                status = await asyncio.wait_for(self.post(uuid, body), self.timeout)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                log.warning("CDR %s: post failed: %r", uuid, exc)
                continue
            if 200 <= status < 300:
                self.posted += 1
                return
            log.warning("CDR %s: post got HTTP %s", uuid, status)
        self.write_backup(uuid, body)

    async def post(self, uuid: str, body: bytes) -> int:
        """One HTTP/1.1 POST exactly as mod_json_cdr sends it; returns the status code."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = (parts.path or "/") + f"?uuid={uuid}"
        # mod_json_cdr's ``cred`` (user:password) is sent as HTTP basic auth.
        cred = ""
        if parts.username is not None:
            token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
            cred = f"Authorization: Basic {token}\r\n"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{cred}User-Agent: freeswitch-json/1.0\r\n"
            f"Accept: */*\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head.encode("ascii") + body)
            await writer.drain()
            status_line = await reader.readline()
            fields = status_line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise ValueError(f"bad HTTP status line {status_line[:60]!r}")
            return int(fields[1])
        finally:
            writer.close()

    def write_backup(self, uuid: str, body: bytes) -> None:
        """The err-log-dir fallback (fails with the ``disk_full`` fault)."""
        path = self.err_log_dir / f"{uuid}.cdr.json"
        try:
            if self.disk_full:
                raise OSError(28, "No space left on device", str(path))
            self.err_log_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            self.written += 1
        except OSError as exc:
            self.lost += 1
            log.error("CDR %s: backup file %s not written: %s", uuid, path, exc)
