"""Forms of the call configuration screens (provider console and client portal).

Every form validates by building the directory's dataclass (through the model's ``clean()``):
an engine or call-flow ``ValueError`` becomes an error on the field it is about.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.models import construct_instance
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import schema_context

from telephony import config_checks
from telephony.models import CallPolicy, Number
from tenants.models import Client, Role


def add_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Attach ``exc`` to the form: to the fields it names, else to the form as a whole."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, messages in exc.message_dict.items():
        target = field if field in form.fields and field != NON_FIELD_ERRORS else None
        form.add_error(target, messages)


def one_field(parse: Callable[[], Any], field: str) -> Any:
    """Run a ``config_checks`` parser inside ``clean_<field>`` (errors on that field only)."""
    try:
        return parse()
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise ValidationError(sum(exc.message_dict.values(), [])) from None
        raise


def check_targets(action: str, field: str, tenant: Client) -> None:
    """``queue:<id>`` must be a queue of ``tenant`` and ``menu:<id>`` one of its menus."""
    from portal.models import IvrMenu
    from routing.models import Queue

    kind, _sep, arg = (action or "").partition(":")
    if kind == "queue" and not Queue.objects.filter(tenant=tenant, queue_id=arg).exists():
        raise ValidationError(
            {field: _("%(queue)s is not a queue of this company.") % {"queue": arg}}
        )
    if kind == "menu":
        with schema_context(tenant.schema_name):
            exists = IvrMenu.objects.filter(menu_id=arg).exists()
        if not exists:
            raise ValidationError(
                {field: _("%(menu)s is not a menu of this company.") % {"menu": arg}}
            )


class ConfigModelForm(forms.ModelForm):
    """A ModelForm whose instance is validated by ``full_clean`` with every error kept.

    Errors the model names for fields this form does not show go to the form as a whole (a
    plain ModelForm would raise for them).
    """

    exclude_from_model_check: tuple[str, ...] = ()

    def _post_clean(self) -> None:
        opts = self._meta
        try:
            self.instance = construct_instance(self, self.instance, opts.fields, opts.exclude)
        except ValidationError as exc:
            add_errors(self, exc)
            return
        if self.errors:
            return
        try:
            self.instance.full_clean(exclude=list(self.exclude_from_model_check))
        except ValidationError as exc:
            add_errors(self, exc)

    def make_read_only(self) -> None:
        for field in self.fields.values():
            field.disabled = True


def client_choices() -> Any:
    return Client.objects.exclude(schema_name="public").order_by("name")


class NumberForm(ConfigModelForm):
    class Meta:
        model = Number
        fields = ["did", "tenant", "origin", "entry_menu", "queue", "active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = client_choices()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tenant = data.get("tenant")
        menu = (data.get("entry_menu") or "").strip()
        if tenant is not None and menu:
            try:
                check_targets(f"menu:{menu}", "entry_menu", tenant)
            except ValidationError as exc:
                add_errors(self, exc)
        return data


class CallPolicyForm(ConfigModelForm):
    """Everything of a client's call policy (provider console)."""

    weekly_hours = forms.CharField(
        label=_("Opening hours"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One line per rule, e.g. Mon-Fri 09:00-18:00; empty: always open."),
    )
    holidays = forms.CharField(
        label=_("Holidays"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Dates (YYYY-MM-DD), separated by spaces or commas."),
    )
    recording_roles = forms.MultipleChoiceField(
        label=_("Roles that may play recordings"),
        required=False,
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    lookup_url = forms.URLField(
        label=_("Caller lookup webhook"),
        required=False,
        assume_scheme="https",
        help_text=_("Your system, asked about each caller (signed POST, short timeout)."),
    )
    escalation = forms.CharField(
        label=_("Escalation rules"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            'JSON list, e.g. [{"target": "sofia/gateway/x/+380...", "reason": "vip", "vip": true,'
            ' "topics": [], "hours": [32400, 64800], "on_arrival": true}] (hours: local seconds'
            " of day)."
        ),
    )

    class Meta:
        model = CallPolicy
        fields = [
            "greeting",
            "default_queue",
            "weekly_hours",
            "holidays",
            "closed_message",
            "closed_action",
            "suspended_message",
            "recording",
            "recording_sample",
            "recording_retention_days",
            "recording_roles",
            "lookup_url",
            "lookup_secret",
            "lookup_timeout_s",
            "second_line",
            "callback_digit",
            "voicemail_digit",
            "max_overflow_concurrent",
            "max_overflow_minutes_per_day",
            "overflow_refused_target",
            "escalation",
        ]
        widgets = {
            "greeting": forms.Textarea(attrs={"rows": 2}),
            "closed_message": forms.Textarea(attrs={"rows": 2}),
            "suspended_message": forms.Textarea(attrs={"rows": 2}),
            "lookup_secret": forms.PasswordInput(render_value=False),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        policy: CallPolicy = self.instance
        if not self.is_bound:
            self.initial["weekly_hours"] = config_checks.format_weekly(policy.weekly_hours or [])
            self.initial["holidays"] = " ".join(policy.holidays or [])
            self.initial["escalation"] = (
                json.dumps(policy.escalation, ensure_ascii=False) if policy.escalation else ""
            )

    def clean_weekly_hours(self) -> list[list[Any]]:
        text = self.cleaned_data.get("weekly_hours", "")
        return one_field(lambda: config_checks.parse_weekly(text, "weekly_hours"), "weekly_hours")

    def clean_holidays(self) -> list[str]:
        text = self.cleaned_data.get("holidays", "")
        return one_field(lambda: config_checks.parse_holidays(text, "holidays"), "holidays")

    def clean_lookup_secret(self) -> str:
        # Never shown back: an empty field keeps the secret there is.
        return self.cleaned_data.get("lookup_secret") or self.instance.lookup_secret

    def clean_escalation(self) -> list[Any]:
        text = self.cleaned_data.get("escalation", "")
        return one_field(lambda: config_checks.parse_json_list(text, "escalation"), "escalation")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tenant = self.instance.tenant
        for field in ("closed_action",):
            if data.get(field):
                try:
                    check_targets(data[field].strip(), field, tenant)
                except ValidationError as exc:
                    add_errors(self, exc)
        second = (data.get("second_line") or "").strip()
        if second.startswith("queue:"):
            try:
                check_targets(second, "second_line", tenant)
            except ValidationError as exc:
                add_errors(self, exc)
        return data


class HoursForm(forms.Form):
    """A client's opening hours and holidays (client portal)."""

    weekly_hours = CallPolicyForm.base_fields["weekly_hours"]
    holidays = CallPolicyForm.base_fields["holidays"]

    def clean_weekly_hours(self) -> list[list[Any]]:
        text = self.cleaned_data.get("weekly_hours", "")
        return one_field(lambda: config_checks.parse_weekly(text, "weekly_hours"), "weekly_hours")

    def clean_holidays(self) -> list[str]:
        text = self.cleaned_data.get("holidays", "")
        return one_field(lambda: config_checks.parse_holidays(text, "holidays"), "holidays")

    @staticmethod
    def initial_for(policy: CallPolicy | None) -> dict[str, str]:
        if policy is None:
            return {"weekly_hours": "", "holidays": ""}
        return {
            "weekly_hours": config_checks.format_weekly(policy.weekly_hours or []),
            "holidays": " ".join(policy.holidays or []),
        }


def changes(form: forms.ModelForm) -> dict[str, Any]:
    """The changed fields and their new values, for the audit log (secrets masked)."""
    out: dict[str, Any] = {}
    for name in form.changed_data:
        value = form.cleaned_data.get(name)
        if "secret" in name:
            value = "***"
        elif hasattr(value, "pk"):
            value = str(value)
        out[name] = value
    return out
