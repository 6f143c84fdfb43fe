from __future__ import annotations

from django.core.management.base import BaseCommand

from recordings.actions import do_purge_recordings
from tenants.commands import clients_option


class Command(BaseCommand):
    help = (
        "Delete recordings whose retention (the client's call policy) has ended, except those "
        "under legal hold; each purge is audited and the row kept as 'purged'. Idempotent: run "
        "it as a periodic job. Without --tenant, every client company in turn."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", help="schema name of one client company")

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        tenants = clients_option(opts["tenant"])
        for tenant in tenants:
            report = do_purge_recordings(tenant)
            self.stdout.write(str(report))
            for error in report.errors:
                self.stderr.write(f"  {error}")
