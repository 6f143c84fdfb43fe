from __future__ import annotations

from django.core.management.base import BaseCommand

from calls.actions import DEFAULT_GRACE_S, do_reconcile
from tenants.commands import clients_option


class Command(BaseCommand):
    help = (
        "Reconcile ended calls with their legs' CDRs and rate the ones that match (each call "
        "exactly once); flag answered CDRs that no call accounts for. Idempotent: run it as a "
        "periodic job. Without --tenant, every client company in turn."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", help="schema name of one client company")
        parser.add_argument(
            "--grace",
            type=float,
            default=DEFAULT_GRACE_S,
            help=f"seconds a CDR may wait for its call before it is flagged (default {DEFAULT_GRACE_S})",
        )

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        tenants = clients_option(opts["tenant"])
        for tenant in tenants:
            report = do_reconcile(tenant, grace_s=opts["grace"])
            self.stdout.write(str(report))
            for error in report.rating_errors:
                self.stderr.write(f"  {error}")
