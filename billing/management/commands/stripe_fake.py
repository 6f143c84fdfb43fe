"""``manage.py stripe_fake``: serve the loopback Stripe fake for the demo (never production).

The web server and the worker reach it through ``STRIPE_API_BASE`` (set by ``STRIPE_FAKE_PORT``
in settings); it sends signed ``invoice.paid`` webhooks back to the provider console's webhook.
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.stripe_fake import StripeFake, http_deliver


class Command(BaseCommand):
    help = "Serve a loopback fake of Stripe's API (demo only) that pays invoices via webhooks."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("STRIPE_FAKE_PORT") or 12111),
            help="port on 127.0.0.1 (default: STRIPE_FAKE_PORT or 12111)",
        )
        site_port = int(os.environ.get("DEMO_PORT") or settings.SITE_PORT)
        parser.add_argument(
            "--webhook-url",
            default=f"http://127.0.0.1:{site_port}/billing/stripe/webhook/",
            help="where webhooks go (loopback only; default: the demo's provider console)",
        )
        parser.add_argument(
            "--webhook-host",
            default=f"localhost:{site_port}",
            help="Host header of webhook requests (the provider console's domain)",
        )
        parser.add_argument(
            "--pay-after",
            type=float,
            default=20.0,
            help="seconds after finalizing that the fake client pays (0: only the Pay button)",
        )
        parser.add_argument(
            "--exit-with-parent",
            action="store_true",
            help="stop when the process that started this one ends (for make demo)",
        )

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        if settings.PRODUCTION:
            raise CommandError("the Stripe fake is for the demo and tests, never production")
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            raise CommandError("set STRIPE_FAKE_PORT (or STRIPE_WEBHOOK_SECRET) first")
        logging.getLogger("billing.stripe_fake").setLevel(logging.INFO)
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(message)s")
        try:
            fake = StripeFake(
                webhook_secret=secret,
                deliver=http_deliver(opts["webhook_url"], opts["webhook_host"]),
                port=opts["port"],
                pay_after=opts["pay_after"] or None,
                retries=8,  # the web server may still be starting; Stripe retries too
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"stripe fake: {exc}") from exc
        fake.start()
        self.stdout.write(
            self.style.SUCCESS(
                f"Stripe fake on {fake.url}/ (invoices and Pay buttons); webhooks to "
                f"{opts['webhook_url']}"
                + (
                    f"; invoices paid {opts['pay_after']:g} s after finalizing"
                    if opts["pay_after"]
                    else ""
                )
            )
        )
        if settings.STRIPE_API_BASE != fake.url:
            self.stdout.write(
                self.style.WARNING(
                    f"STRIPE_API_BASE is {settings.STRIPE_API_BASE!r}: the platform won't use this "
                    f"fake unless STRIPE_FAKE_PORT={fake.port} is set for it too"
                )
            )
        parent = os.getppid()
        stop = threading.Event()
        try:
            while not stop.wait(1.0):
                if opts["exit_with_parent"] and os.getppid() != parent:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            fake.stop()
