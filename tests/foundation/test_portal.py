from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from portal.imports import normalize_phone, parse_contacts_csv
from portal.models import Contact, ContactImport
from tenants.models import AuditEvent
from tests.conftest import A_HOST, site


def test_phone_numbers_are_normalised_to_e164():
    assert normalize_phone("+380 (44) 123-45-67") == "+380441234567"
    assert normalize_phone("0044 20 7946 0000") == "+442079460000"
    assert normalize_phone("380441234567") == "+380441234567"
    for bad in ("", "12", "+0441234567", "phone", "+38044123456789012"):
        try:
            normalize_phone(bad)
        except Exception as exc:  # noqa: BLE001
            assert "international format" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_csv_rows_are_validated_one_by_one():
    text = (
        "\ufeffName,Phone,Email,VIP,Extra\n"
        "Good One,+380501112233,good@example.com,yes,ignored\n"
        ",+380501112234,,,\n"
        "Bad Mail,+380501112235,not-mail,,\n"
        "Dup,+380 50 111 22 33,,,\n"
        "Too,+380501112236,,,,,\n"
        "\n"
        "Last,+48221234567,,no,\n"
    )
    result = parse_contacts_csv(text)
    assert [r["phone"] for r in result.rows] == ["+380501112233", "+48221234567"]
    assert result.rows[0]["vip"] is True and result.rows[1]["vip"] is False
    problems = {(e["line"], e["field"]) for e in result.errors}
    assert problems == {(3, "name"), (4, "email"), (5, "phone"), (6, "")}
    assert any("duplicate of line 2" in e["message"] for e in result.errors)


def test_csv_without_required_columns_is_rejected_whole():
    result = parse_contacts_csv("fullname,mobile\nA,+380501112233\n")
    assert result.rows == []
    assert result.errors == [{"line": 1, "field": "name,phone", "message": "missing column"}]


def test_contact_form_rejects_bad_and_duplicate_numbers(cast, in_schema):  # type: ignore[no-untyped-def]
    admin = site(A_HOST, cast.a_admin)
    admin.cookies["ccp_language"] = "en"
    bad = admin.post("/contacts/new/", {"name": "X", "phone": "12"})
    assert bad.status_code == 200 and "international format" in bad.content.decode()
    ok = admin.post("/contacts/new/", {"name": "Olha", "phone": "+380 67 000 11 22"})
    assert ok.status_code == 302
    with in_schema("alpha"):
        olha = Contact.objects.get(name="Olha")
    assert olha.phone == "+380670001122"
    dup = admin.post("/contacts/new/", {"name": "Other", "phone": "+380670001122"})
    assert "Olha already has this number" in dup.content.decode()
    assert AuditEvent.objects.filter(
        action="contact.created", tenant_schema="alpha", object_repr__startswith="Olha"
    ).exists()
    assert (
        site(A_HOST, cast.a_viewer)
        .post("/contacts/new/", {"name": "V", "phone": "+380670001123"})
        .status_code
        == 404
    )


def test_upload_queues_an_import_job_after_commit(cast, in_schema):  # type: ignore[no-untyped-def]
    from procrastinate.contrib.django.models import ProcrastinateJob

    admin = site(A_HOST, cast.a_admin)
    upload = SimpleUploadedFile(
        "people.csv", b"name,phone\nIra,+380931112233\n", content_type="text/csv"
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = admin.post("/contacts/import/", {"file": upload})
    assert response.status_code == 302
    with in_schema("alpha"):
        job = ContactImport.objects.get(filename="people.csv")
    queued = ProcrastinateJob.objects.filter(task_name="portal.tasks.import_contacts_task").latest(
        "id"
    )
    assert queued.args == {"tenant_schema": "alpha", "import_id": job.pk}


def test_upload_rejects_non_utf8_and_binary_files(cast):  # type: ignore[no-untyped-def]
    admin = site(A_HOST, cast.a_admin)
    admin.cookies["ccp_language"] = "en"
    latin = SimpleUploadedFile("x.csv", "name,phone\nJosé,+380931112233\n".encode("latin-1"))
    assert "UTF-8" in admin.post("/contacts/import/", {"file": latin}).content.decode()
    binary = SimpleUploadedFile("x.csv", b"name,phone\n\x00\x00")
    assert (
        "does not look like a CSV"
        in admin.post("/contacts/import/", {"file": binary}).content.decode()
    )
