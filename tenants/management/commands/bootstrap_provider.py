from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tenants import actions
from tenants.demo import ensure_public_tenant
from tenants.models import Membership, Role


class Command(BaseCommand):
    help = (
        "Create the provider (public tenant) with its console domains and invite its first admin."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--domain", action="append", required=True, help="console host name (repeatable)"
        )
        parser.add_argument("--admin-email", required=True)

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        with transaction.atomic():
            ensure_public_tenant(opts["domain"])
            if Membership.objects.filter(tenant=None, role=Role.PROVIDER_ADMIN).exists():
                raise CommandError(
                    "--admin-email: a provider admin already exists; invite more from the console."
                )
            from django.core.exceptions import ValidationError

            try:
                _inv, token = actions.do_invite(
                    email=opts["admin_email"], role=Role.PROVIDER_ADMIN, tenant=None, actor=None
                )
            except ValidationError as exc:
                raise CommandError(
                    "; ".join(
                        f"--{k.replace('_', '-')}: {' '.join(v)}"
                        for k, v in exc.message_dict.items()
                    )
                ) from None
        from tenants.models import Client

        self.stdout.write(
            f"Provider admin invitation: {actions.site_url(Client.objects.get(schema_name='public'))}/accept/{token}/"
        )
