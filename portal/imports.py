"""Contacts CSV import: parse and validate rows, then upsert by phone number.

Columns (header row required, order free): ``name, phone`` required; ``email, account_ref,
vip, notes`` optional. Every bad row is reported with its line number and field; good rows are
imported. The whole import is one transaction, so a crash leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from portal.models import Contact, ContactImport

REQUIRED = ("name", "phone")
KNOWN = {"name", "phone", "email", "account_ref", "vip", "notes"}
_PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TRUE = {"1", "yes", "true", "y", "так", "да"}


def normalize_phone(raw: str) -> str:
    """E.164: keep digits and a leading plus; '00' international prefix becomes '+'."""
    cleaned = re.sub(r"[\s().-]", "", raw or "")
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if cleaned and not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    if not _PHONE_RE.match(cleaned):
        raise ValidationError("not a phone number in international format (e.g. +380441234567)")
    return cleaned


@dataclass
class ParseResult:
    rows: list[dict[str, object]] = field(default_factory=list)
    errors: list[dict[str, object]] = field(default_factory=list)


def parse_contacts_csv(text: str) -> ParseResult:
    result = ParseResult()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [col for col in REQUIRED if col not in header]
    if missing:
        result.errors.append({"line": 1, "field": ",".join(missing), "message": "missing column"})
        return result
    reader.fieldnames = header
    seen: dict[str, int] = {}
    for line, raw in enumerate(reader, start=2):
        if None in raw:  # more cells than headers
            result.errors.append({"line": line, "field": "", "message": "too many cells"})
            continue
        row = {k: (v or "").strip() for k, v in raw.items() if k in KNOWN}
        if not any(row.values()):
            continue
        try:
            if not row.get("name"):
                raise ValidationError({"name": "required"})
            phone = normalize_phone(row.get("phone", ""))
            email = row.get("email", "")
            if email:
                try:
                    validate_email(email)
                except ValidationError:
                    raise ValidationError({"email": "not a valid e-mail address"}) from None
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for name, errs in exc.message_dict.items():
                    result.errors.append({"line": line, "field": name, "message": "; ".join(errs)})
            else:
                result.errors.append({"line": line, "field": "phone", "message": exc.messages[0]})
            continue
        if phone in seen:
            result.errors.append(
                {"line": line, "field": "phone", "message": f"duplicate of line {seen[phone]}"}
            )
            continue
        seen[phone] = line
        result.rows.append(
            {
                "name": row["name"][:200],
                "phone": phone,
                "email": email,
                "account_ref": row.get("account_ref", "")[:64],
                "vip": row.get("vip", "").lower() in _TRUE,
                "notes": row.get("notes", ""),
            }
        )
    return result


def run_import(job: ContactImport) -> ContactImport:
    """Import one uploaded file (call inside the tenant's schema). Idempotent per file."""
    with transaction.atomic():
        job = ContactImport.objects.select_for_update().get(pk=job.pk)
        if job.status in (ContactImport.Status.DONE, ContactImport.Status.FAILED):
            return job  # a retried job never imports twice
        parsed = parse_contacts_csv(job.content)
        existing = {
            c.phone: c for c in Contact.objects.filter(phone__in=[r["phone"] for r in parsed.rows])
        }
        created = updated = 0
        for row in parsed.rows:
            contact = existing.get(row["phone"])  # type: ignore[arg-type]
            if contact is None:
                Contact.objects.create(**row)
                created += 1
            else:
                for key, value in row.items():
                    setattr(contact, key, value)
                contact.save()
                updated += 1
        job.created_count, job.updated_count = created, updated
        job.errors = parsed.errors[:500]
        job.status = ContactImport.Status.DONE
        job.finished_at = timezone.now()
        job.save()
    return job
