from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telephony.cdr_files import DONE_DIR, REJECTED_DIR, sweep_cdr_dir
from telephony.models import SwitchNode


class Command(BaseCommand):
    help = (
        "Import CDR files that FreeSWITCH's mod_json_cdr left in its err-log-dir when posting "
        f"failed. Imported files move to {DONE_DIR}/, unreadable ones to {REJECTED_DIR}/ with a "
        ".reason.txt. Idempotent (one CDR per leg UUID): run it as a periodic job."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--dir", required=True, help="the node's json_cdr err-log-dir")
        parser.add_argument(
            "--node",
            help="name of the switch node the files come from (default: match the CDR's "
            "switchname to a node name, else none)",
        )
        parser.add_argument(
            "--min-age",
            type=float,
            default=10.0,
            help="seconds a file must be untouched before it is imported (default 10)",
        )

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        directory = Path(opts["dir"])
        if not directory.is_dir():
            raise CommandError(f"--dir: {directory} is not a directory")
        node = None
        if opts["node"]:
            node = SwitchNode.objects.filter(name=opts["node"]).first()
            if node is None:
                raise CommandError(f"--node: no switch node named {opts['node']!r}")
        report = sweep_cdr_dir(
            directory, node=node, max_bytes=settings.CDR_MAX_BYTES, min_age=opts["min_age"]
        )
        for name, reason in report.rejected.items():
            self.stderr.write(f"rejected {name}: {reason}")
        self.stdout.write(f"{directory}: {report}")
