"""Validation of the call configuration, by reusing the directory's own dataclasses.

The rules for a menu, a queue, a number... live once, in ``telephony.callflow.directory`` and
``routing.engine.model`` (they raise ``ValueError``). Models' ``clean()`` and the forms build
the dataclass and turn its ``ValueError`` into a ``ValidationError`` on the field it names, so
a typo is refused when it is typed, with the same words the switchboard would use.

Also the small text formats the screens use for structured fields: skills (``billing=2,
uk=1``), relaxation steps (``30=2, 60=0``), weekly hours (``Mon-Fri 09:00-18:00``) and holidays
(``2026-12-25``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import date, time
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

T = TypeVar("T")

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def built(
    factory: Callable[[], T],
    hints: Iterable[tuple[str, str]] = (),
    default: str | None = None,
) -> T:
    """``factory()``, or a ``ValidationError`` on the field its ``ValueError`` names.

    ``hints`` are (word in the message, field) pairs, tried in order; a message naming none
    of them goes to ``default`` (None: the form as a whole).
    """
    try:
        return factory()
    except (ValueError, TypeError, KeyError) as exc:
        message = str(exc) or exc.__class__.__name__
        for word, field in hints:
            if word in message:
                raise ValidationError({field: message}) from None
        raise ValidationError({default: message} if default else message) from None


def checked_action(value: str, field: str) -> str:
    """``value`` if it is a valid call-flow action, else a ValidationError on ``field``."""
    from telephony.callflow.directory import check_action

    value = (value or "").strip()
    built(lambda: check_action(value), default=field)
    return value


# -- small text formats -------------------------------------------------------------------
_PAIR_RE = re.compile(r"^\s*([^=\s:]+)\s*[=:]\s*(-?\d+(?:\.\d+)?)\s*$")


def parse_pairs(text: str, field: str, *, key_float: bool = False) -> list[tuple[Any, int]]:
    """``"a=1, b=2"`` -> ``[("a", 1), ("b", 2)]`` (keys as floats for relaxation steps)."""
    pairs: list[tuple[Any, int]] = []
    for chunk in re.split(r"[,;\n]", text or ""):
        if not chunk.strip():
            continue
        match = _PAIR_RE.match(chunk)
        if not match or "." in match.group(2):
            raise ValidationError(
                {
                    field: _("Write pairs as name=number, separated by commas: %(chunk)s")
                    % {"chunk": chunk.strip()}
                }
            )
        key: Any = match.group(1)
        if key_float:
            try:
                key = float(key)
            except ValueError:
                raise ValidationError(
                    {field: _("%(value)s is not a number of seconds.") % {"value": key}}
                ) from None
        pairs.append((key, int(match.group(2))))
    keys = [k for k, _v in pairs]
    if len(set(keys)) != len(keys):
        raise ValidationError({field: _("A name is given twice.")})
    return pairs


def format_pairs(pairs: Iterable[Iterable[Any]]) -> str:
    out = []
    for key, value in pairs:
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        out.append(f"{key}={value}")
    return ", ".join(out)


def parse_skills(text: str, field: str) -> dict[str, int]:
    skills = dict(parse_pairs(text, field))
    for name, level in skills.items():
        if level < 0:
            raise ValidationError(
                {field: _("Skill %(name)s: a level is 0 or more.") % {"name": name}}
            )
    return skills


def _day(token: str, field: str) -> int:
    token = token.strip()
    if token.isdigit() and 0 <= int(token) <= 6:
        return int(token)
    for index, name in enumerate(DAY_NAMES):
        if token.lower()[:3] == name.lower():
            return index
    raise ValidationError(
        {field: _("%(value)s is not a weekday (Mon..Sun or 0..6, Monday = 0).") % {"value": token}}
    )


def _clock(token: str, field: str) -> time:
    try:
        hours, minutes = token.strip().split(":")
        if hours == "24" and minutes == "00":
            return time(23, 59, 59)
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValidationError(
            {field: _("%(value)s is not a time of day (HH:MM).") % {"value": token.strip()}}
        ) from None


def parse_weekly(text: str, field: str) -> list[list[Any]]:
    """Lines such as ``Mon-Fri 09:00-18:00`` or ``Sat 10:00-14:00, 15:00-17:00``.

    Returns ``[[weekday, "HH:MM", "HH:MM"], ...]`` (the stored form).
    """
    rows: list[list[Any]] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        days_part, _sep, times_part = line.partition(" ")
        if not times_part.strip():
            raise ValidationError(
                {
                    field: _("Write a line as days and hours, e.g. Mon-Fri 09:00-18:00: %(line)s")
                    % {"line": line}
                }
            )
        days: list[int] = []
        for token in days_part.split(","):
            first, dash, last = token.partition("-")
            start_day = _day(first, field)
            end_day = _day(last, field) if dash else start_day
            if end_day < start_day:
                raise ValidationError(
                    {field: _("A day range runs Monday to Sunday: %(line)s") % {"line": line}}
                )
            days.extend(range(start_day, end_day + 1))
        for span in times_part.split(","):
            opens, dash, closes = span.strip().partition("-")
            if not dash:
                raise ValidationError(
                    {field: _("Write hours as HH:MM-HH:MM: %(value)s") % {"value": span.strip()}}
                )
            start, end = _clock(opens, field), _clock(closes, field)
            for day in days:
                rows.append([day, start.strftime("%H:%M:%S"), end.strftime("%H:%M:%S")])
    return rows


def weekly_tuples(rows: Iterable[Iterable[Any]]) -> tuple[tuple[int, time, time], ...]:
    return tuple((int(d), time.fromisoformat(s), time.fromisoformat(e)) for d, s, e in rows)


def format_weekly(rows: Iterable[Iterable[Any]]) -> str:
    """The stored rows as ``parse_weekly`` reads them, consecutive equal days as a range."""

    def clock(value: str, closing: bool) -> str:
        t = time.fromisoformat(value)
        return "24:00" if closing and t == time(23, 59, 59) else t.strftime("%H:%M")

    spans: dict[int, list[str]] = {}
    for day, start, end in sorted((int(d), s, e) for d, s, e in rows):
        spans.setdefault(day, []).append(f"{clock(start, False)}-{clock(end, True)}")
    lines = []
    days = sorted(spans)
    i = 0
    while i < len(days):
        j = i
        while (
            j + 1 < len(days)
            and days[j + 1] == days[j] + 1
            and spans[days[j + 1]] == spans[days[i]]
        ):
            j += 1
        label = DAY_NAMES[days[i]] if i == j else f"{DAY_NAMES[days[i]]}-{DAY_NAMES[days[j]]}"
        lines.append(f"{label} {', '.join(spans[days[i]])}")
        i = j + 1
    return "\n".join(lines)


def parse_holidays(text: str, field: str) -> list[str]:
    found: list[str] = []
    for token in re.split(r"[,;\s]+", text or ""):
        if not token:
            continue
        try:
            found.append(date.fromisoformat(token).isoformat())
        except ValueError:
            raise ValidationError(
                {field: _("%(value)s is not a date (YYYY-MM-DD).") % {"value": token}}
            ) from None
    return sorted(set(found))


def parse_json_list(text: str, field: str) -> list[Any]:
    text = (text or "").strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            {field: _("Not valid JSON: %(error)s") % {"error": exc.msg}}
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValidationError({field: _("Write a JSON list of objects.")})
    return value
