"""Background jobs of the client portal."""

from __future__ import annotations

from ccplatform.jobs import tenant_task
from portal.imports import run_import
from portal.models import ContactImport


@tenant_task(queue="imports", retry=3)
def import_contacts_task(*, tenant, import_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    job = run_import(ContactImport.objects.get(pk=import_id))
    return {"created": job.created_count, "updated": job.updated_count, "errors": len(job.errors)}
