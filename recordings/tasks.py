"""Background jobs of recordings: import from a node's folder, purge past retention."""

from __future__ import annotations

from procrastinate.contrib.django import app

from ccplatform.jobs import tenant_task
from recordings.actions import (
    DEFAULT_MISSING_AFTER_HOURS,
    do_import_recordings,
    do_purge_recordings,
)


@tenant_task(queue="recordings", retry=3)
def import_tenant_recordings(  # type: ignore[no-untyped-def]
    *, tenant, source_dir: str, missing_after_hours: float = DEFAULT_MISSING_AFTER_HOURS
) -> dict[str, int]:
    report = do_import_recordings(tenant, source_dir, missing_after_hours=missing_after_hours)
    return {
        "stored": report.stored,
        "waiting": report.waiting,
        "missing": report.missing,
        "errors": len(report.errors),
    }


@tenant_task(queue="recordings", retry=3)
def purge_tenant_recordings(*, tenant) -> dict[str, int]:  # type: ignore[no-untyped-def]
    report = do_purge_recordings(tenant)
    return {"purged": report.purged, "held": report.held, "errors": len(report.errors)}


@app.periodic(cron="17 3 * * *", periodic_id="purge_recordings_daily")
@app.task(queue="recordings", name="recordings.tasks.purge_all_recordings")
def purge_all_recordings(timestamp: int) -> int:
    """Daily: one purge job per client company."""
    from tenants.models import Client

    schemas = list(
        Client.objects.exclude(schema_name="public").values_list("schema_name", flat=True)
    )
    for schema in schemas:
        purge_tenant_recordings.defer(tenant_schema=schema)
    return len(schemas)
