from __future__ import annotations

from django.core.management.base import BaseCommand

from recordings.actions import (
    DEFAULT_IDLE_S,
    DEFAULT_MISSING_AFTER_HOURS,
    DEFAULT_SETTLE_S,
    do_import_recordings,
)
from tenants.commands import clients_option


class Command(BaseCommand):
    help = (
        "Move finished recordings from a switch node's recordings folder (as this machine sees "
        "it: a local path or a mount) into the store (RECORDINGS_ROOT, one folder per client) "
        "and mark them stored; a recording not on the node some hours after it started is "
        "marked missing (logged, audited). Idempotent: run it as a periodic job. Without "
        "--tenant, every client company in turn."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--source",
            required=True,
            help="the node's recordings folder (what FreeSWITCH calls $${recordings_dir})",
        )
        parser.add_argument("--tenant", help="schema name of one client company")
        parser.add_argument(
            "--missing-after-hours",
            type=float,
            default=DEFAULT_MISSING_AFTER_HOURS,
            help=f"hours after its start a recording not found is missing (default {DEFAULT_MISSING_AFTER_HOURS:g})",
        )
        parser.add_argument(
            "--settle",
            type=float,
            default=DEFAULT_SETTLE_S,
            help=f"seconds a file of an ended call must be unchanged (default {DEFAULT_SETTLE_S:g})",
        )
        parser.add_argument(
            "--idle",
            type=float,
            default=DEFAULT_IDLE_S,
            help=f"seconds a file with no ended call must be unchanged (default {DEFAULT_IDLE_S:g})",
        )

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        tenants = clients_option(opts["tenant"])
        for tenant in tenants:
            report = do_import_recordings(
                tenant,
                opts["source"],
                missing_after_hours=opts["missing_after_hours"],
                settle_s=opts["settle"],
                idle_s=opts["idle"],
            )
            self.stdout.write(str(report))
            for error in report.errors:
                self.stderr.write(f"  {error}")
