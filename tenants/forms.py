from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext_lazy as _

from tenants.access import client_role, provider_role
from tenants.models import CLIENT_ROLES, CURRENCIES, PROVIDER_ROLES, Client, Role

TIME_ZONES = sorted(zoneinfo.available_timezones())


class SiteLoginForm(AuthenticationForm):
    """E-mail + password; only people who belong to this site may sign in here."""

    username = forms.EmailField(
        label=_("E-mail"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def confirm_login_allowed(self, user) -> None:  # type: ignore[no-untyped-def]
        super().confirm_login_allowed(user)
        tenant = getattr(self.request, "tenant", None)
        if tenant is None:
            raise self.get_invalid_login_error()
        allowed = (
            provider_role(user) is not None
            if tenant.is_provider
            else client_role(user, tenant) is not None
        )
        if not allowed:
            # Same message as a wrong password: don't tell strangers who has an account.
            raise self.get_invalid_login_error()


class SitePasswordResetForm(PasswordResetForm):
    """Only members of this site get a reset link from it (others get the same answer, no mail)."""

    site_tenant: Client | None = None

    def get_users(self, email):  # type: ignore[no-untyped-def]
        tenant = self.site_tenant
        for user in super().get_users(email):
            if tenant is None:
                continue
            if tenant.is_provider and provider_role(user) is not None:
                yield user
            elif not tenant.is_provider and client_role(user, tenant) is not None:
                yield user


class TokenForm(forms.Form):
    token = forms.RegexField(
        label=_("Code from your authenticator app"),
        regex=r"^\d{6,8}$",
        error_messages={"invalid": _("Enter the 6-digit code.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label=_("Your name"), max_length=200)
    password = forms.CharField(
        label=_("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        required=False,
    )

    def __init__(self, *args, needs_password: bool, email: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.needs_password = needs_password
        self.email = email
        if not needs_password:
            del self.fields["password"]

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password") or ""
        if self.needs_password:
            if not password:
                raise forms.ValidationError(_("Choose a password."))
            from tenants.models import User

            password_validation.validate_password(password, User(email=self.email))
        return password


class ClientSettingsFields(forms.Form):
    time_zone = forms.ChoiceField(
        label=_("Time zone"), choices=[(z, z) for z in TIME_ZONES], initial="Europe/Kyiv"
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCIES, initial="UAH")
    language = forms.ChoiceField(
        label=_("Default language"), choices=settings.LANGUAGES, initial="uk"
    )


class ClientCreateForm(ClientSettingsFields):
    name = forms.CharField(label=_("Company name"), max_length=200)
    schema_name = forms.CharField(
        label=_("Schema name"),
        max_length=63,
        help_text=_("Lowercase letters, digits, underscores; fixed once created."),
    )
    domain = forms.CharField(
        label=_("Portal domain"), max_length=253, help_text=_("e.g. acme.localhost")
    )
    admin_email = forms.EmailField(label=_("First client admin (e-mail)"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), choices=Client.Status.choices, initial=Client.Status.TRIAL
    )
    legal_name = forms.CharField(label=_("Legal name"), max_length=300, required=False)
    legal_address = forms.CharField(
        label=_("Legal address"), widget=forms.Textarea(attrs={"rows": 2}), required=False
    )
    tax_id = forms.CharField(label=_("Tax / VAT id"), max_length=64, required=False)
    registration_number = forms.CharField(
        label=_("Registration number"), max_length=64, required=False
    )
    billing_email = forms.EmailField(label=_("Billing e-mail"), required=False)

    field_order = [
        "name",
        "schema_name",
        "domain",
        "admin_email",
        "status",
        "time_zone",
        "currency",
        "language",
    ]


class ClientProfileForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = [
            "name",
            "legal_name",
            "legal_address",
            "tax_id",
            "registration_number",
            "billing_email",
            "time_zone",
            "currency",
            "language",
        ]
        widgets = {
            "legal_address": forms.Textarea(attrs={"rows": 2}),
            "time_zone": forms.Select(choices=[(z, z) for z in TIME_ZONES]),
        }


class DomainForm(forms.Form):
    domain = forms.CharField(label=_("Domain"), max_length=253)


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"))
    role = forms.ChoiceField(label=_("Role"))

    def __init__(self, *args, provider: bool, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        roles = PROVIDER_ROLES if provider else CLIENT_ROLES
        self.fields["role"].choices = [(r.value, r.label) for r in Role if r in roles]


class AuditFilterForm(forms.Form):
    tenant = forms.ModelChoiceField(
        label=_("Client"), queryset=Client.objects.exclude(schema_name="public"), required=False
    )
    action = forms.CharField(label=_("Action"), required=False, max_length=64)
    actor = forms.CharField(label=_("Who (e-mail)"), required=False, max_length=254)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Interface language"),
        choices=[("", _("Company default"))] + list(settings.LANGUAGES),
        required=False,
    )
