"""Wrap-up results of calls, stored in the schema of the call's client (a TENANT app).

An agent ends every answered call with a disposition code and an optional note
(:class:`CallDisposition`, one per call and agent). Which codes a client offers is a small
table in its own schema (:class:`DispositionCode`, set with ``manage.py disposition_codes``);
a client that has defined none gets :data:`DEFAULT_CODES`. (A table rather than a list in the
client's ``CallPolicy``: codes get switched off, not deleted, so recorded dispositions keep
their meaning, and the table lives with the client's other call data.) ``agent_id`` is ``routing.models.Agent.agent_id`` (public schema): a
string, not a foreign key, since tenant schemas never point into the public one.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

# The codes a client gets until it defines its own (code, label).
DEFAULT_CODES: tuple[tuple[str, object], ...] = (
    ("resolved", _("Resolved")),
    ("follow_up", _("Needs a follow-up")),
    ("escalated", _("Escalated to the second line")),
    ("sale", _("Sale")),
    ("complaint", _("Complaint")),
    ("wrong_number", _("Wrong number")),
)

NOTE_MAX_CHARS = 2000


class DispositionCode(models.Model):
    """One disposition code this client offers its agents at wrap-up."""

    code = models.SlugField(_("code"), max_length=63, unique=True)
    label = models.CharField(_("label"), max_length=200)
    active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return f"{self.code}: {self.label}"


class CallDisposition(models.Model):
    """How one agent closed one call: a code and a note. Posting again replaces them."""

    call_id = models.CharField(max_length=64, db_index=True)
    agent_id = models.CharField(max_length=63)
    code = models.CharField(max_length=63)
    note = models.TextField(blank=True, max_length=NOTE_MAX_CHARS)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["call_id", "agent_id"], name="disposition_once"),
        ]

    def __str__(self) -> str:
        return f"{self.call_id} by {self.agent_id}: {self.code}"
