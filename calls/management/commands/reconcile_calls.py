from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from calls.actions import DEFAULT_GRACE_S, do_reconcile
from tenants.models import Client


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
        tenants = Client.objects.exclude(schema_name="public").order_by("schema_name")
        if opts["tenant"]:
            tenants = tenants.filter(schema_name=opts["tenant"])
            if not tenants.exists():
                raise CommandError(f"--tenant: no client company with schema {opts['tenant']!r}")
        for tenant in tenants:
            report = do_reconcile(tenant, grace_s=opts["grace"])
            self.stdout.write(str(report))
            for error in report.rating_errors:
                self.stderr.write(f"  {error}")
