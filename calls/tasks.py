"""Background jobs of calls: reconciliation with CDRs and rating, per tenant."""

from __future__ import annotations

from calls.actions import DEFAULT_GRACE_S, do_reconcile
from ccplatform.jobs import tenant_task


@tenant_task(queue="calls", retry=3)
def reconcile_tenant(*, tenant, grace_s: float = DEFAULT_GRACE_S) -> dict[str, int]:  # type: ignore[no-untyped-def]
    report = do_reconcile(tenant, grace_s=grace_s)
    return {
        "checked": report.checked,
        "ok": report.ok,
        "waiting": report.waiting,
        "mismatch": report.mismatch,
        "flagged": report.flagged,
        "rated": report.rated,
        "rating_errors": len(report.rating_errors),
        "cdr_flags": report.cdr_flags,
    }
