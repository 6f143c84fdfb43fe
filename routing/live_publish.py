"""Publishing the live wallboard (routing/live.py) from the switchboard to the web processes.

The switchboard calls :func:`publish` about twice a second. For every stream that changed it
stores the stream's latest snapshot (one ``routing.LiveSnapshot`` row per stream, public schema)
and then sends the delta to the channel-layer group :func:`group_name` of the stream, where each
:class:`routing.consumers.LiveConsumer` forwards it to its browser.

Why a database row and not the cache: the snapshot must be readable by every web process, and
with the embedded defaults there is no Redis (the channel layer itself runs on PostgreSQL, see
docs/decisions/0003-channel-layer.md) and the default cache is per process. The row is written
*before* the delta is sent, so a consumer that joins the group and then reads the row never
misses a delta: either the row already has it, or the group delivers it (and the consumer drops
what the row already had, by ``seq``).

When nothing changed for :data:`HEARTBEAT_S` seconds (switch time), the provider stream gets a
heartbeat with the current ``seq``: a client that missed the last delta sees it is behind, and
a wallboard sees the switchboard is alive.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import weakref
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from routing.live import PROVIDER_STREAM, LiveBoard

__all__ = [
    "GROUP_PREFIX",
    "HEARTBEAT_S",
    "MESSAGE_TYPE",
    "group_name",
    "load_snapshot",
    "publish",
    "publish_forever",
]

log = logging.getLogger(__name__)

GROUP_PREFIX = "live."
MESSAGE_TYPE = "live.message"  # handled by LiveConsumer.live_message
HEARTBEAT_S = 5.0
_GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_last_sent: weakref.WeakKeyDictionary[LiveBoard, float] = weakref.WeakKeyDictionary()
# Boards whose last publish failed: the next one stores every stream's snapshot, since the
# deltas taken then are gone and a client that resyncs must not get an older snapshot.
_store_all: weakref.WeakSet[LiveBoard] = weakref.WeakSet()


def group_name(stream: str) -> str:
    """The channel-layer group of a stream: ``live.provider``, ``live.tenant.<id>``.

    Group names allow only ASCII letters, digits, ``.``, ``-`` and ``_`` and fewer than 100
    characters; anything else is replaced and the name gets a digest of the stream, so two
    streams never share a group."""
    dotted = stream.replace(":", ".")
    safe = _GROUP_UNSAFE.sub("-", dotted)
    if safe != dotted or len(safe) > 80:
        digest = hashlib.sha256(stream.encode()).hexdigest()[:12]
        safe = f"{safe[:60]}-{digest}"
    return GROUP_PREFIX + safe


@database_sync_to_async
def _store(snapshots: dict[str, dict[str, Any]]) -> None:
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from routing.models import LiveSnapshot

    at = timezone.now()
    rows = [
        LiveSnapshot(stream=stream, epoch=msg["epoch"], seq=msg["seq"], data=msg, updated_at=at)
        for stream, msg in snapshots.items()
    ]
    with schema_context("public"):
        LiveSnapshot.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["stream"],
            update_fields=["epoch", "seq", "data", "updated_at"],
        )


@database_sync_to_async
def load_snapshot(stream: str) -> dict[str, Any] | None:
    """The latest stored snapshot of a stream (what :func:`publish` last wrote), or None."""
    from django_tenants.utils import schema_context

    from routing.models import LiveSnapshot

    with schema_context("public"):
        row = LiveSnapshot.objects.filter(stream=stream).values_list("data", flat=True).first()
    return row


async def publish(board: LiveBoard, now: float, *, layer: Any = None) -> dict[str, int]:
    """Publish what changed on ``board`` since the last call; ``now`` is switch time.

    Returns ``{stream: seq}`` of the deltas sent (empty when nothing changed). Call it from
    the switchboard's event loop about twice a second, after feeding the board; one publisher
    per board (the board's delta is consumed by the call)."""
    layer = layer if layer is not None else get_channel_layer()
    deltas = board.delta(now) or {}
    try:
        if board in _store_all:
            await _store(board.snapshots(now))
            _store_all.discard(board)
        elif deltas:
            await _store({stream: board.snapshot(now, stream) for stream in deltas})
        if not deltas:
            last = _last_sent.get(board)
            if last is None or now - last >= HEARTBEAT_S:
                _last_sent[board] = now
                beat = board.heartbeat(now, PROVIDER_STREAM)
                await layer.group_send(
                    group_name(PROVIDER_STREAM), {"type": MESSAGE_TYPE, "message": beat}
                )
            return {}
    except BaseException:
        _store_all.add(board)
        raise
    # A delta lost from here on costs its clients a resync, which finds the snapshot above.
    for stream, message in deltas.items():
        await layer.group_send(group_name(stream), {"type": MESSAGE_TYPE, "message": message})
    if PROVIDER_STREAM in deltas:
        _last_sent[board] = now
    return {stream: message["seq"] for stream, message in deltas.items()}


async def publish_forever(
    board: LiveBoard, now: Callable[[], float], interval_s: float = 0.5, *, layer: Any = None
) -> None:
    """Call :func:`publish` every ``interval_s`` seconds until cancelled; ``now()`` gives
    switch time. A failure (database or channel layer down) is logged and the next round
    tries again (storing every stream's snapshot, so no client resyncs to an old one)."""
    while True:
        try:
            await publish(board, now(), layer=layer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live wallboard: publishing failed; retrying")
        await asyncio.sleep(interval_s)
