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
        parser.add_argument("--no-traffic", action="store_true", help="no simulated switch/calls")
        parser.add_argument(
            "--calls-per-hour", type=float, default=90.0, help="simulated calls per client and hour"
        )

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
        if not opts["no_traffic"]:
            children += self._traffic(env, opts["calls_per_hour"])
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

    def _traffic(self, env: dict[str, str], calls_per_hour: float) -> list[subprocess.Popen[bytes]]:
        """A simulated FreeSWITCH node with callers and agent phones, and the switchboard
        that runs its calls (so the wallboard and the portals move)."""
        from telephony.actions import do_create_node, do_rotate_cdr_secret
        from telephony.models import Number, SwitchNode

        esl, outbound = "18021", "18084"
        node = SwitchNode.objects.filter(name="sim1").first()
        if node is None:
            secret = do_create_node(
                name="sim1", esl_host="127.0.0.1", esl_port=int(esl), esl_password="ClueCon",
                actor=None, description="Simulated FreeSWITCH node of the demo",
            ).cdr_secret  # fmt: skip
        else:
            secret = do_rotate_cdr_secret(node, actor=None)
        port = env["SITE_PORT"]
        dids = [
            f"{n.did}:{n.tenant.schema_name}"
            for n in Number.objects.filter(origin="direct").select_related("tenant")
        ]
        sim = [sys.executable, "-m", "telephony.simulator", "--esl-port", esl, "--outbound",
               f"127.0.0.1:{outbound}", "--agents", "1001-1010", "--calls-per-hour",
               str(calls_per_hour), "--duration", "86400",
               "--seed", str(int(time.time()) % 100000),  # fresh UUIDs each run
               "--hostname", "sim1",
               "--cdr-url", f"http://sim1:{secret}@127.0.0.1:{port}/telephony/cdr/",
               "--cdr-err-dir", "var/sim-cdr-errors"]  # fmt: skip
        for did in dids:
            sim += ["--did", did]
        switchboard = [sys.executable, "manage.py", "switchboard", "--node",
                       f"sim1=127.0.0.1:{esl}:ClueCon", "--outbound", f"127.0.0.1:{outbound}",
                       "--callback-dial", "user/{number}"]  # fmt: skip
        self.stdout.write(
            f"Simulated switch on 127.0.0.1:{esl} with {len(dids)} numbers and agent phones "
            f"1001-1010; switchboard on 127.0.0.1:{outbound}; wallboard at /wallboard/."
        )
        return [
            subprocess.Popen(switchboard, env=env),  # noqa: S603
            subprocess.Popen(sim, env=env),  # noqa: S603
        ]

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
