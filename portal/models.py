"""A client company's own records, kept in its schema (never visible from another tenant)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Contact(models.Model):
    """A customer of the client company: what the IVR's caller lookup and the agent's card read."""

    name = models.CharField(_("name"), max_length=200)
    phone = models.CharField(_("phone (E.164)"), max_length=20, db_index=True)
    email = models.EmailField(_("e-mail"), blank=True)
    account_ref = models.CharField(_("account reference"), max_length=64, blank=True, db_index=True)
    vip = models.BooleanField(_("VIP"), default=False)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["phone"], name="contact_phone_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})"


class ContactImport(models.Model):
    """An uploaded CSV of contacts, imported by a background job."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    filename = models.CharField(max_length=255)
    content = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_by_id = models.BigIntegerField(null=True)  # a public-schema user id
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.filename


MAX_IMPORT_BYTES = getattr(settings, "CONTACT_IMPORT_MAX_BYTES", 2 * 1024 * 1024)
