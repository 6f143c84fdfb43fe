"""A client company's own records, kept in its schema (never visible from another tenant)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
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


# -- IVR (the switchboard reads these through telephony.switchboard_db) -----------------------
MENU_ID_RE = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MENU_HINTS = [
    ("menu_id", "menu_id"),
    ("timeout_s", "timeout_s"),
    ("retries", "retries"),
    ("digit", "options"),
]


class IvrMenu(models.Model):
    """One IVR menu of this client company: a prompt, digit options, timeout behaviour."""

    menu_id = models.CharField(
        _("menu id"),
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(MENU_ID_RE, _("Lowercase letters, digits, - and _ (e.g. main)."))
        ],
    )
    prompt_text = models.TextField(_("prompt (spoken text)"), blank=True)
    prompt_file = models.CharField(
        _("prompt (audio file on the switch)"),
        max_length=300,
        blank=True,
        help_text=_("Path of an uploaded recording, e.g. /var/lib/freeswitch/sounds/main.wav."),
    )
    timeout_s = models.FloatField(_("wait for a digit (s)"), default=5.0)
    retries = models.PositiveSmallIntegerField(_("attempts"), default=3)
    invalid_prompt = models.TextField(
        _("said after a wrong digit"), default="Sorry, that is not an option."
    )
    on_timeout = models.CharField(
        _("after the last attempt"),
        max_length=200,
        default="hangup",
        help_text=_("queue:<id>, menu:<id>, say:<text>, answer, escalate, voicemail or hangup."),
    )
    is_entry = models.BooleanField(
        _("entry menu"), default=False, help_text=_("Callers start here.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_entry", "menu_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_entry"], condition=models.Q(is_entry=True), name="ivrmenu_one_entry"
            ),
        ]

    def __str__(self) -> str:
        return self.menu_id

    def prompt(self):  # type: ignore[no-untyped-def]
        from telephony.callflow.directory import Prompt

        return Prompt(text=self.prompt_text.strip(), file=self.prompt_file.strip())

    def to_menu(self, options=None):  # type: ignore[no-untyped-def]
        """The directory's ``Menu`` (``options``: IvrOption rows, default: read them)."""
        from telephony.callflow.directory import Menu, MenuOption, Prompt

        if options is None:
            options = list(self.options.all()) if self.pk else []
        return Menu(
            menu_id=self.menu_id,
            prompt=self.prompt(),
            options=tuple(MenuOption(o.digit, o.action) for o in options),
            timeout_s=float(self.timeout_s),
            retries=int(self.retries),
            invalid_prompt=Prompt(
                text=self.invalid_prompt.strip() or "Sorry, that is not an option."
            ),
            on_timeout=self.on_timeout.strip(),
        )

    def clean(self) -> None:
        from telephony.config_checks import built, checked_action

        built(self.prompt, default="prompt_text")
        checked_action(self.on_timeout, "on_timeout")
        built(self.to_menu, MENU_HINTS)


class IvrOption(models.Model):
    """A digit of a menu and what it does (an action string, see telephony.callflow.directory)."""

    menu = models.ForeignKey(IvrMenu, on_delete=models.CASCADE, related_name="options")
    digit = models.CharField(_("digit"), max_length=1)
    action = models.CharField(
        _("action"),
        max_length=200,
        help_text=_("queue:<id>, menu:<id>, say:<text>, answer, escalate, voicemail or hangup."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["menu", "digit"]
        constraints = [
            models.UniqueConstraint(fields=["menu", "digit"], name="ivroption_digit_once"),
        ]

    def __str__(self) -> str:
        return f"{self.menu_id}:{self.digit} -> {self.action}"

    def clean(self) -> None:
        from telephony.callflow.directory import MenuOption
        from telephony.config_checks import built

        built(lambda: MenuOption(self.digit, self.action.strip()), [("digit", "digit")], "action")
