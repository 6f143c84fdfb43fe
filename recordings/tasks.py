"""Background jobs of recordings: import from a node's folder, purge past retention.

Every minute :func:`import_all_recordings` queues one import job per client company and node
folder (``settings.RECORDINGS_IMPORT_SOURCES``). The import itself is idempotent (a stored
recording is never taken again, the node's file is removed once stored); on top of that each
(tenant, folder) has at most one job waiting (queueing lock) and a tenant's imports run one at
a time (lock), so a slow import is never overtaken by the next minute's.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from ccplatform.jobs import tenant_task
from recordings.actions import (
    DEFAULT_MISSING_AFTER_HOURS,
    do_import_recordings,
    do_purge_recordings,
)

log = logging.getLogger(__name__)


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


def import_locks(schema: str, source_dir: str) -> tuple[str, str]:
    """``(lock, queueing_lock)`` of a tenant's import from one folder."""
    digest = hashlib.sha256(source_dir.encode()).hexdigest()[:12]
    return f"recordings-import-{schema}", f"recordings-import-{schema}-{digest}"


@app.periodic(cron="* * * * *", periodic_id="import_recordings_every_minute")
@app.task(queue="recordings", name="recordings.tasks.import_all_recordings")
def import_all_recordings(timestamp: int) -> int:
    """Every minute: one import job per client company and configured node folder (none
    queued while an earlier one for the same pair still waits). Returns the jobs queued."""
    from tenants.models import Client

    sources = [str(s) for s in getattr(settings, "RECORDINGS_IMPORT_SOURCES", ()) if str(s)]
    if not sources:
        return 0
    schemas = list(
        Client.objects.exclude(schema_name="public")
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )
    queued = 0
    for source in sources:
        for schema in schemas:
            lock, queueing_lock = import_locks(schema, source)
            try:
                with transaction.atomic():  # a refused duplicate must not abort a caller's
                    import_tenant_recordings.configure(  # type: ignore[attr-defined]
                        lock=lock, queueing_lock=queueing_lock
                    ).defer(tenant_schema=schema, source_dir=source)
            except AlreadyEnqueued:
                log.debug("recordings import of %s from %s already queued", schema, source)
                continue
            queued += 1
    return queued
