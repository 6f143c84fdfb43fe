"""The job queue for real: procrastinate on PostgreSQL, a worker, a tenant-aware task."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from portal.models import Contact, ContactImport

CSV = "name,phone,email,vip\nOksana,+380501234567,oksana@example.com,yes\nPetro,0044 20 7946 0000,,\nBroken,12,,\n"


def run_worker_once() -> None:
    """What `manage.py procrastinate worker` does, until the queue is empty."""
    from procrastinate.contrib.django import app

    with app.replace_connector(app.connector.get_worker_connector()) as worker_app:
        worker_app.run_worker(
            queues=["imports"], wait=False, install_signal_handlers=False, listen_notify=False
        )


@pytest.fixture
def committed(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Rows the worker (its own connections) can see: committed, and removed afterwards."""
    created: list[tuple[str, int]] = []
    with django_db_blocker.unblock():
        yield created
        with schema_context("alpha"):
            Contact.objects.filter(phone__in=["+380501234567", "+442079460000"]).delete()
            ContactImport.objects.filter(filename="worker-test.csv").delete()
        with connection.cursor() as cursor:
            for table, pk in created:
                cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])  # noqa: S608
        connection.set_schema_to_public()


def test_a_worker_runs_a_tenant_job_inside_that_tenant(committed):  # type: ignore[no-untyped-def]
    from portal.tasks import import_contacts_task

    with schema_context("alpha"):
        upload = ContactImport.objects.create(filename="worker-test.csv", content=CSV)
    job_id = import_contacts_task.defer(tenant_schema="alpha", import_id=upload.pk)
    committed.append(("procrastinate_jobs", job_id))
    connection.set_schema_to_public()

    run_worker_once()

    with schema_context("alpha"):
        upload.refresh_from_db()
        assert upload.status == ContactImport.Status.DONE
        assert (upload.created_count, upload.updated_count) == (2, 0)
        assert upload.errors == [
            {"line": 4, "field": "phone", "message": upload.errors[0]["message"]}
        ]
        assert Contact.objects.get(phone="+380501234567").vip is True
        assert Contact.objects.filter(phone="+442079460000").exists()
    with schema_context("beta"):
        assert not Contact.objects.filter(phone="+380501234567").exists(), (
            "the job leaked into another tenant"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", [job_id])
        assert cursor.fetchone() == ("succeeded",)


def test_a_job_for_an_unknown_tenant_fails_loudly(committed):  # type: ignore[no-untyped-def]
    from portal.tasks import import_contacts_task

    job_id = import_contacts_task.defer(tenant_schema="no_such_tenant", import_id=1)
    committed.append(("procrastinate_jobs", job_id))
    run_worker_once()
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", [job_id])
        assert cursor.fetchone()[0] in {"failed", "todo"}  # failed, or waiting for a retry
