"""Forms of the client portal's IVR screens (menus, options)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from portal.models import IvrMenu, IvrOption
from telephony.config_forms import ConfigModelForm, add_errors, check_targets
from tenants.models import Client


class TenantActionsMixin:
    """Action fields must name this company's own queues and menus."""

    action_fields: tuple[str, ...] = ()
    tenant: Client

    def check_actions(self, data: dict[str, Any]) -> None:
        for field in self.action_fields:
            value = (data.get(field) or "").strip()
            if value and field not in self.errors:  # type: ignore[attr-defined]
                try:
                    check_targets(value, field, self.tenant)
                except ValidationError as exc:
                    add_errors(self, exc)  # type: ignore[arg-type]


class IvrMenuForm(TenantActionsMixin, ConfigModelForm):
    action_fields = ("on_timeout",)
    # The one-entry constraint is kept by the view (choosing an entry menu unmarks the other).
    exclude_from_model_check = ("is_entry",)

    class Meta:
        model = IvrMenu
        fields = [
            "menu_id",
            "prompt_text",
            "prompt_file",
            "timeout_s",
            "retries",
            "invalid_prompt",
            "on_timeout",
            "is_entry",
        ]

    def __init__(self, *args: Any, tenant: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        if self.instance.pk:
            # Options, numbers and other menus name it.
            self.fields["menu_id"].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.check_actions(data)
        return data

    def save(self, commit: bool = True) -> IvrMenu:
        if self.instance.is_entry:
            # Callers start in one menu: choosing this one unmarks the other (one transaction
            # with the save: the view runs it in one).
            IvrMenu.objects.filter(is_entry=True).exclude(pk=self.instance.pk).update(
                is_entry=False
            )
        return super().save(commit)


class IvrOptionForm(TenantActionsMixin, ConfigModelForm):
    action_fields = ("action",)

    class Meta:
        model = IvrOption
        fields = ["digit", "action"]

    def __init__(self, *args: Any, tenant: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.check_actions(data)
        return data
