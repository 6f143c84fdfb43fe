from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from billing.demo import seed_demo_billing
from telephony.demo_calls import seed_demo_calls
from tenants.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Migrate, seed the demo world and run the platform (web server + job worker)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--no-serve", action="store_true", help="migrate and seed only")

    def handle(self, *args, **opts) -> None:  # type: ignore[no-untyped-def]
        port = opts["port"]
        if port != settings.SITE_PORT:
            settings.SITE_PORT = port
        self.stdout.write("Migrating the public schema and every client schema…")
        call_command("migrate", interactive=False, verbosity=0)
        logins = seed_demo()
        self.stdout.write("\n".join(seed_demo_billing()))
        self.stdout.write("\n".join(seed_demo_calls()))
        self._print_logins(logins)
        if opts["no_serve"]:
            return
        env = {**os.environ, "SITE_PORT": str(port)}
        children = [
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "ccplatform.asgi:application",
                ],
                env=env,
            ),
            subprocess.Popen([sys.executable, "manage.py", "procrastinate", "worker"], env=env),  # noqa: S603
        ]
        self.stdout.write(
            self.style.SUCCESS(f"Serving on http://localhost:{port}/ — Ctrl-C stops everything.")
        )
        stopping = False

        def stop(*_args: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
            if settings.EMBEDDED_DATABASE:
                from ccplatform.embedded_db import EmbeddedPostgres

                EmbeddedPostgres(settings.EMBEDDED_DATA_DIR).stop()
                self.stdout.write("Embedded PostgreSQL stopped.")

    def _print_logins(self, logins: list[tuple[str, str, str]]) -> None:
        self.stdout.write("")
        self.stdout.write(
            self.style.MIGRATE_HEADING(f"Sites and logins (password for all: {DEMO_PASSWORD})")
        )
        current = None
        for url, email, role in logins:
            if url != current:
                self.stdout.write(f"  {url}/")
                current = url
            self.stdout.write(f"      {email:40} {role}")
        self.stdout.write("")
