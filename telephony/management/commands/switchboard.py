"""``manage.py switchboard``: run every call (see telephony/callflow/switchboard.py, decision 0011).

Start two (on two hosts in production): the first takes the leader lock in PostgreSQL and
becomes active; the other waits as a standby and takes over within about a second of the
active one dying (its database session closes, PostgreSQL releases the lock). Bridged calls
keep talking meanwhile: media runs on the switch, not here.

Nodes come from the provider console (Switch nodes, enabled ones); ``--node
NAME=HOST:PORT:PASSWORD`` names them explicitly instead (the demo and tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

log = logging.getLogger("telephony.switchboard")

#: Channels group the active switchboard listens on for agents' and API commands.
CONTROL_GROUP = "switchboard.control"


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"--outbound: expected HOST:PORT, got {text!r}")
    return host, int(port)


def _node_arg(text: str):  # type: ignore[no-untyped-def]
    from telephony.callflow.switchboard import NodeSpec

    name, _, rest = text.partition("=")
    parts = rest.split(":", 2)
    if not name or len(parts) != 3 or not parts[1].isdigit():
        raise CommandError(f"--node: expected NAME=HOST:PORT:PASSWORD, got {text!r}")
    return NodeSpec(name, parts[0], int(parts[1]), parts[2])


def _db_nodes():  # type: ignore[no-untyped-def]
    from telephony.callflow.switchboard import NodeSpec
    from telephony.models import SwitchNode

    return [
        NodeSpec(n.name, n.esl_host, n.esl_port, n.esl_password)
        for n in SwitchNode.objects.filter(enabled=True).order_by("name")
    ]


def _record_status(name: str, connected: bool, core_uuid: str, error: str) -> None:
    from django.db import close_old_connections

    from telephony.actions import do_record_node_status
    from telephony.models import SwitchNode

    close_old_connections()
    node = SwitchNode.objects.filter(name=name).first()
    if node is not None:
        do_record_node_status(
            node, connected=connected, core_uuid=core_uuid, last_error=error[:200]
        )


class Command(BaseCommand):
    help = "Run the switchboard: switch nodes, the calls' outbound sockets and the routing engine."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--outbound", default="127.0.0.1:8084", help="HOST:PORT the nodes' dialplan connects to"
        )
        parser.add_argument(
            "--node",
            action="append",
            default=[],
            help="NAME=HOST:PORT:PASSWORD (repeatable); default: enabled nodes from the console",
        )
        parser.add_argument(
            "--moh", default="local_stream://moh", help="music on hold source on the switch"
        )
        parser.add_argument(
            "--callback-dial",
            default="sofia/gateway/pstn/{number}",
            help="dial string for calling callers back ({number} is their E.164 number)",
        )
        parser.add_argument(
            "--lock-poll",
            type=float,
            default=0.5,
            help="seconds between standby attempts to take the leader lock",
        )
        parser.add_argument(
            "--snapshot-every",
            type=float,
            default=5.0,
            help="seconds between engine snapshots a standby restores on takeover (0: never)",
        )
        parser.add_argument(
            "--restore-max-age",
            type=float,
            default=120.0,
            help="on start, restore the engine from a snapshot at most this many seconds old",
        )
        parser.add_argument(
            "--publish-every", type=float, default=0.5, help="seconds between wallboard pushes"
        )
        parser.add_argument(
            "--reload-every", type=float, default=5.0, help="seconds between configuration checks"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        host, port = _host_port(opts["outbound"])
        explicit = [_node_arg(n) for n in opts["node"]]
        try:
            asyncio.run(self._run(host, port, explicit, opts))
        except KeyboardInterrupt:
            pass

    async def _run(self, host: str, port: int, explicit: list[Any], opts: dict[str, Any]) -> None:
        from routing.live import LiveBoard
        from routing.live_publish import publish
        from telephony.callflow.gcpacer import GcPacer
        from telephony.callflow.switchboard import Switchboard
        from telephony.switchboard_db import config_version, load_directory
        from telephony.switchboard_store import DbSink, LeaderLock, dsn_from_settings

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)

        # The version first: a change made while the directory loads is then seen next time.
        version = await sync_to_async(config_version, thread_sensitive=False)()
        directory = await sync_to_async(load_directory, thread_sensitive=False)()
        nodes = explicit or await sync_to_async(_db_nodes, thread_sensitive=False)()
        if not nodes:
            raise CommandError("no switch nodes: add one in the provider console or pass --node")
        board = LiveBoard(
            settings.PROVIDER_TIME_ZONE,
            queues=directory.queues.values(),
            agents=[s.profile for s in directory.agents.values()],
            tenants=list(directory.routing.values()),
            epoch=str(int(time.time() * 1000)),
            start=time.time(),
        )
        sink = DbSink(directory)
        sb = Switchboard(
            directory,
            nodes,
            sink=sink,
            outbound_host=host,
            outbound_port=port,
            moh=opts["moh"],
            board=board,
            callback_dial=opts["callback_dial"],
            snapshot_every_s=opts["snapshot_every"],
        )
        # Listen before the lock: when the active switchboard dies, the nodes' dialplan resumes
        # its callers into this socket (ccp.xml's second ``socket``); they wait for us here.
        await sb.listen()
        lock = LeaderLock(dsn_from_settings())
        t_wait = time.monotonic()
        await lock.acquire(
            poll_s=opts["lock_poll"],
            on_wait=lambda: self.stdout.write(
                "standby: another switchboard is active; waiting for the leader lock"
            ),
        )
        self.stdout.write(f"leader lock taken after {time.monotonic() - t_wait:.2f} s")
        current = await sync_to_async(config_version, thread_sensitive=False)()
        if current != version:
            version = current
            directory = await sync_to_async(load_directory, thread_sensitive=False)()
            sb.directory = sink.directory = directory
        # The predecessor's engine (queues, places, agents' states) from its last snapshot.
        await sb.start(restore=True, restore_max_age_s=opts["restore_max_age"])
        with contextlib.suppress(TimeoutError):
            await sb.wait_nodes(5.0)
        await sb.adopt()
        # Decisions 0008/0011: freeze what start-up built; young collections paced by the
        # loop (small, every 250 ms), middle and full ones on a timer (see GcPacer).
        GcPacer().start()
        self.stdout.write(
            f"switchboard active: {len(nodes)} node(s) ({', '.join(n.name for n in nodes)}), "
            f"outbound socket {host}:{sb.server.port}, {len(directory.numbers)} numbers, "
            f"{len(directory.queues)} queues, {len(directory.agents)} agents"
        )

        async def publisher() -> None:
            while True:
                await asyncio.sleep(opts["publish_every"])
                try:
                    await publish(board, sb.now())
                except Exception:  # noqa: BLE001  # the wallboard must never stop calls
                    log.warning("wallboard publish failed", exc_info=True)

        async def reloader() -> None:
            nonlocal version
            while True:
                await asyncio.sleep(opts["reload_every"])
                try:
                    current = await sync_to_async(config_version, thread_sensitive=False)()
                    if current != version:
                        fresh = await sync_to_async(load_directory, thread_sensitive=False)()
                        sb.reload(fresh)
                        sink.directory = fresh
                        version = current
                        log.info("configuration reloaded")
                    for link in sb.links.values():
                        err = "" if link.client.is_connected else repr(link.client.last_error or "")
                        await sync_to_async(_record_status, thread_sensitive=False)(
                            link.spec.name,
                            link.client.is_connected,
                            link.client.core_uuid or "",
                            err,
                        )
                    if not await lock.still_held():
                        log.error(
                            "leader lock lost (database connection gone): stopping so a standby takes over"
                        )
                        stop.set()
                except Exception:  # noqa: BLE001
                    log.warning("configuration check failed", exc_info=True)

        layer = get_channel_layer()

        def to_agent(agent_id: str, event: dict[str, Any]) -> None:
            group = "agent." + re.sub(r"[^A-Za-z0-9_.-]", "_", agent_id)[:80]
            sb.spawn(layer.group_send(group, {"type": "agent.event", "event": event}))

        sb.agent_listener = to_agent

        async def control() -> None:
            """Commands from the agents' consoles and the API (docs/decisions/0011)."""
            channel = await layer.new_channel()
            await layer.group_add(CONTROL_GROUP, channel)
            while True:
                msg = await layer.receive(channel)
                request_id = re.sub(r"[^A-Za-z0-9_.-]", "", str(msg.get("request_id") or ""))[:64]
                try:
                    reply = await sb.command(msg)
                except Exception as exc:  # noqa: BLE001  # a bad command must not stop calls
                    log.exception("switchboard command failed: %r", msg)
                    reply = {"ok": False, "message": f"failed: {exc}"}
                if request_id:
                    await layer.group_send(
                        f"switchboard.reply.{request_id}", {"type": "switchboard.reply", **reply}
                    )

        tasks = [
            loop.create_task(publisher()),
            loop.create_task(reloader()),
            loop.create_task(control()),
        ]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await sb.stop()
            await lock.release()
            self.stdout.write(f"switchboard stopped: {dict(sb.outcomes)}")
