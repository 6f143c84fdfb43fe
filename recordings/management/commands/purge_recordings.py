from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from recordings.actions import do_purge_recordings
from tenants.models import Client


class Command(BaseCommand):
    help = (
        "Delete recordings whose retention (the client's call policy) has ended, except those "
        "under legal hold; each purge is audited and the row kept as 'purged'. Idempotent: run "
        "it as a periodic job. Without --tenant, every client company in turn."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", help="schema name of one client company")

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        tenants = Client.objects.exclude(schema_name="public").order_by("schema_name")
        if opts["tenant"]:
            tenants = tenants.filter(schema_name=opts["tenant"])
            if not tenants.exists():
                raise CommandError(f"--tenant: no client company with schema {opts['tenant']!r}")
        for tenant in tenants:
            report = do_purge_recordings(tenant)
            self.stdout.write(str(report))
            for error in report.errors:
                self.stderr.write(f"  {error}")
