"""mod_conference on the simulated switch: rooms, members, the ``conference`` app and API.

What FreeSWITCH 1.10 does and the platform relies on (read from mod_conference's sources):

* The ``conference <room>[@<profile>][+flags{...}]`` application answers the channel if it is
  not answered yet, creates the room on its first member (``conference-create``), adds the
  channel as a member with an id from one counter of the whole node (``add-member``), and
  returns when the member leaves: kicked or hung up by the ``conference`` API, transferred
  elsewhere (``uuid_transfer``, ``uuid_bridge``, ``uuid_park``) or hung up. Leaving fires
  ``del-member``; the last member out ends the room (``conference-destroy``). A member's
  channel then goes on with what comes next (its dialplan, or the park it was executed from).
* Events are ``CUSTOM`` with ``Event-Subclass: conference::maintenance`` and ``Action``; they
  carry the room (``Conference-Name``, ``-Domain``, ``-Size``, ``-Profile-Name``,
  ``-Unique-ID``) and, for member actions, the member's channel data, ``Member-ID`` and
  ``Member-Type``.
* API: ``conference list``, ``conference <room> list``, ``conference <room> kick|hup
  <id|all|last>`` (``+OK kicked <id>`` / ``+OK hup <id>`` per member); an unknown room answers
  ``-ERR Conference <room> not found``, an unknown member ``-ERR Non-Existant ID <id>``.

Bridges are not the room's business: ``uuid_transfer -both`` moves both legs of a bridge
(see :meth:`Switch.api_uuid_transfer`) and neither is hung up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import Channel

if TYPE_CHECKING:
    from .switch import Switch

MAINTENANCE = "conference::maintenance"


@dataclass
class Member:
    id: int
    channel: Channel
    left: asyncio.Event = field(default_factory=asyncio.Event)
    kicked: bool = False


@dataclass
class Room:
    name: str
    profile: str
    uuid: str
    members: dict[int, Member] = field(default_factory=dict)


class ConferenceMixin:
    """The conference part of :class:`~telephony.simulator.switch.Switch`."""

    conferences: dict[str, Room]
    conference_ids: int

    # ------------------------------------------------------------------ events
    def _conf_event(self: Switch, room: Room, action: str, member: Member | None = None) -> None:
        headers = [("Event-Subclass", MAINTENANCE), *self.core_headers("CUSTOM")]
        headers += [
            ("Conference-Name", room.name),
            ("Conference-Domain", self.hostname),
            ("Conference-Size", str(len(room.members))),
            ("Conference-Ghosts", "0"),
            ("Conference-Profile-Name", room.profile),
            ("Conference-Unique-ID", room.uuid),
        ]
        unique_id = None
        if member is not None:
            headers += member.channel.data_headers(False)
            headers += [("Member-ID", str(member.id)), ("Member-Type", "member")]
            unique_id = member.channel.uuid
        headers.append(("Action", action))
        from .switch import SimEvent  # noqa: PLC0415  # switch.py imports this module

        self.fire(SimEvent("CUSTOM", headers, None, unique_id, MAINTENANCE))

    # ------------------------------------------------------------------ the application
    async def app_conference(self: Switch, ch: Channel, arg: str) -> None:
        """``conference <room>@<profile>[+flags{...}]``: a member until it leaves."""
        spec = arg.strip().split("+", 1)[0]
        name, _, profile = spec.partition("@")
        if not name:
            return  # FreeSWITCH logs "Invalid arguments" and the app returns
        if not ch.answered_us:
            self.answer(ch)
        room = self.conferences.get(name)
        if room is None:
            room = Room(name, profile or "default", self.new_uuid())
            self.conferences[name] = room
            self._conf_event(room, "conference-create")
        self.conference_ids += 1
        member = Member(self.conference_ids, ch)
        room.members[member.id] = member
        ch.variables["conference_name"] = name
        ch.variables["conference_member_id"] = str(member.id)
        ch.variables["conference_uuid"] = room.uuid
        self._conf_event(room, "add-member", member)

        def leave() -> None:
            if room.members.pop(member.id, None) is None:
                return
            member.left.set()
            self._conf_event(room, "del-member", member)
            if not room.members and self.conferences.get(name) is room:
                del self.conferences[name]
                self._conf_event(room, "conference-destroy")

        entry = self.push_unwind(ch, "conference", leave)
        await member.left.wait()
        self.pop_unwind(ch, entry)

    # ------------------------------------------------------------------ the API
    def api_conference(self: Switch, arg: str) -> str:
        words = arg.split()
        if not words:
            return "-USAGE: conference <room> <command> [args]\n"
        if words[0] == "list" and len(words) == 1:
            return (
                "".join(
                    f"+OK Conference {room.name} ({len(room.members)} member"
                    f"{'s' if len(room.members) != 1 else ''} rate: 8000 flags: running|dynamic)\n"
                    + self._conf_list(room)
                    for room in self.conferences.values()
                )
                or "No active conferences.\n"
            )
        room = self.conferences.get(words[0])
        if room is None:
            return f"-ERR Conference {words[0]} not found\n"
        if len(words) < 2:
            return "Conference command, not specified.\nTry 'help'\n"
        command = words[1]
        if command == "list":
            return self._conf_list(room)
        if command not in ("kick", "hup"):
            return f"-ERR Conference command '{command}' not found.\n"
        if len(words) < 3:
            return f"{command} <[member_id|all|last|non_moderator]>\n"
        target = words[2]
        if target == "all":
            chosen = list(room.members.values())
        elif target == "last":
            chosen = [room.members[max(room.members)]] if room.members else []
        elif target.isdigit():
            if int(target) not in room.members:
                return f"-ERR Non-Existant ID {int(target)}\n"
            chosen = [room.members[int(target)]]
        else:
            return f"{command} <[member_id|all|last|non_moderator]>\n"
        out = []
        for member in chosen:
            member.kicked = command == "kick"
            out.append(f"+OK {'kicked' if command == 'kick' else 'hup'} {member.id}\n")
            self._conf_event(room, f"{command}-member", member)
            # The member's loop ends (MFLAG_RUNNING cleared): its app returns and the channel
            # goes on with what follows it.
            leave = [e for e in self.rt(member.channel).unwind if e.label == "conference"]
            for entry in leave:
                self.pop_unwind(member.channel, entry)
        return "".join(out)

    def _conf_list(self: Switch, room: Room) -> str:
        rows = []
        for member in room.members.values():
            ch = member.channel
            rows.append(
                ";".join(
                    (
                        str(member.id),
                        ch.name,
                        ch.uuid,
                        ch.profile.caller_id_name,
                        ch.profile.caller_id_number,
                        "hear|speak",
                        "0",
                        "0",
                        "100",
                    )
                )
                + "\n"
            )
        return "".join(rows)
