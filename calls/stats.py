"""Per-tenant call figures for the client's portal (run inside the tenant's schema).

IVR containment is the share of calls that ended in the IVR (self-service answers, menus that
ended the call) among all calls the platform answered or tried to: calls ended in IVR / all
calls with an outcome. It is what makes IVR minutes pay: every contained call costs IVR
minutes instead of agent minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count

from calls.models import Call


@dataclass(frozen=True)
class CallFigures:
    total: int
    by_outcome: dict[str, int]

    @property
    def contained(self) -> int:
        return self.by_outcome.get(Call.Outcome.IVR, 0)

    @property
    def containment(self) -> Decimal | None:
        """Calls ended in the IVR / all calls, as a percentage with one decimal (None: no calls)."""
        if not self.total:
            return None
        return (Decimal(self.contained * 100) / Decimal(self.total)).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )


def call_figures(days: int = 30, *, now_ms: int | None = None) -> CallFigures:
    """Calls that started in the last ``days`` days, by outcome (the current schema's tenant)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    since = now_ms - days * 86_400_000
    rows = (
        Call.objects.filter(started_ms__gte=since)
        .exclude(outcome="")
        .values("outcome")
        .annotate(n=Count("id"))
    )
    by_outcome = {r["outcome"]: r["n"] for r in rows}
    return CallFigures(total=sum(by_outcome.values()), by_outcome=by_outcome)
