"""Show or set a client's disposition codes (what its agents choose from at wrap-up).

    manage.py disposition_codes alpha                       # list (the defaults if none)
    manage.py disposition_codes alpha --set sale="Sale" resolved="Resolved"
    manage.py disposition_codes alpha --clear               # back to the defaults

``--set`` replaces the client's list: the codes named are active in the order given, codes not
named are kept but switched off (dispositions already recorded with them stay readable).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.text import slugify
from django_tenants.utils import schema_context

from dispositions.actions import disposition_codes
from dispositions.models import DispositionCode
from tenants.models import Client


class Command(BaseCommand):
    help = "Show or set a client's disposition codes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("schema", help="the client's schema name")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--set", nargs="+", metavar="CODE=LABEL", dest="pairs")
        group.add_argument("--clear", action="store_true", help="use the defaults again")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = (
            Client.objects.exclude(schema_name="public")
            .filter(schema_name=options["schema"])
            .first()
        )
        if tenant is None:
            raise CommandError(f"no client with schema {options['schema']!r}")
        if options["clear"]:
            with schema_context(tenant.schema_name):
                DispositionCode.objects.all().delete()
        elif options["pairs"]:
            wanted: list[tuple[str, str]] = []
            for pair in options["pairs"]:
                code, sep, label = pair.partition("=")
                if not sep or not label.strip() or slugify(code) != code or len(code) > 63:
                    raise CommandError(f"{pair!r}: expected code=Label, the code a slug")
                wanted.append((code, label.strip()))
            if len({code for code, _label in wanted}) != len(wanted):
                raise CommandError("a code is named twice")
            with schema_context(tenant.schema_name), transaction.atomic():
                DispositionCode.objects.update(active=False)
                for position, (code, label) in enumerate(wanted):
                    DispositionCode.objects.update_or_create(
                        code=code,
                        defaults={"label": label, "active": True, "position": position},
                    )
        for item in disposition_codes(tenant):
            self.stdout.write(f"{item['code']}\t{item['label']}")
