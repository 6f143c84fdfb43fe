"""Typed readers for settings that come from the environment.

Every helper names the variable in its error, so a misconfigured deployment fails at
start-up with a message an operator can act on, not with a traceback deep in Django.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class ImproperlyConfiguredEnv(RuntimeError):
    """Raised when an environment variable is missing or malformed."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(
    name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The variable's value, or ``default`` when unset. Empty counts as unset."""
    value = (environ if environ is not None else os.environ).get(name)
    if value is None or value == "":
        return default
    return value


def env_required(name: str, *, why: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable's value; a missing one stops start-up with a message naming it."""
    value = env_str(name, environ=environ)
    if value is None:
        raise ImproperlyConfiguredEnv(f"{name} must be set ({why}).")
    return value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    raw = (environ if environ is not None else os.environ).get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfiguredEnv(f"{name} must be a boolean (true/false), got {raw!r}.")


def env_int(name: str, default: int, *, environ: Mapping[str, str] | None = None) -> int:
    raw = env_str(name, environ=environ)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name} must be an integer, got {raw!r}.") from None


def env_list(
    name: str, default: list[str], *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """A comma-separated list; blanks around items are dropped."""
    raw = env_str(name, environ=environ)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_switch_nodes(raw: str) -> list[dict[str, object]]:
    """Parse ``FREESWITCH_NODES``: ``name=host:port`` items, comma separated.

    The ESL password of each node is read from ``FREESWITCH_<NAME>_PASSWORD`` (upper-cased,
    dashes as underscores) so that secrets never sit in a list that gets logged.
    """
    nodes: list[dict[str, object]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, address = item.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or not name or not colon or not host or not port.isdigit():
            raise ImproperlyConfiguredEnv(
                f"FREESWITCH_NODES item {item!r} must look like name=host:port."
            )
        nodes.append({"name": name, "host": host, "port": int(port)})
    return nodes
