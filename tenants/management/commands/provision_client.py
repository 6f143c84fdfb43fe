from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants import actions
from tenants.models import Client


class Command(BaseCommand):
    help = "Create a client company: its schema, its portal domain and an invitation for its first admin."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--schema", required=True, help="schema name: lowercase letters, digits, _"
        )
        parser.add_argument("--domain", required=True, help="portal host name, e.g. acme.localhost")
        parser.add_argument("--admin-email", default=None)
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--currency", default="UAH")
        parser.add_argument("--language", default="en")
        parser.add_argument("--status", default=Client.Status.TRIAL, choices=Client.Status.values)
        parser.add_argument("--legal-name", default="")
        parser.add_argument("--tax-id", default="")

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        if not Client.objects.filter(schema_name="public").exists():
            raise CommandError(
                "The provider (public tenant) does not exist yet: run `manage.py demo` or `manage.py bootstrap_provider` first."
            )
        try:
            result = actions.do_create_client(
                name=opts["name"],
                schema_name=opts["schema"],
                domain=opts["domain"],
                admin_email=opts["admin_email"],
                actor=None,
                time_zone=opts["time_zone"],
                currency=opts["currency"],
                language=opts["language"],
                status=opts["status"],
                legal_name=opts["legal_name"],
                tax_id=opts["tax_id"],
            )
        except ValidationError as exc:
            flags = {
                "schema_name": "--schema",
                "admin_email": "--admin-email",
                "time_zone": "--time-zone",
            }
            problems = "; ".join(
                f"{flags.get(field, '--' + field.replace('_', '-'))}: {' '.join(msgs)}"
                for field, msgs in exc.message_dict.items()
            )
            raise CommandError(problems) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {result.client.name} (schema {result.client.schema_name}) at {actions.site_url(result.client)}"
            )
        )
        if result.invitation_token:
            link = f"{actions.site_url(result.client)}/accept/{result.invitation_token}/"
            self.stdout.write(f"Invitation for {opts['admin_email']}: {link}")
