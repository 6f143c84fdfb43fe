from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.imports import normalize_phone
from portal.models import MAX_IMPORT_BYTES, Contact


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "phone", "email", "account_ref", "vip", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def clean_phone(self) -> str:
        try:
            phone = normalize_phone(self.cleaned_data["phone"])
        except ValidationError:
            raise ValidationError(
                _("Enter the number in international format, e.g. +380441234567.")
            ) from None
        clash = Contact.objects.filter(phone=phone).exclude(pk=self.instance.pk).first()
        if clash is not None:
            raise ValidationError(_("%(name)s already has this number.") % {"name": clash.name})
        return phone


class ContactImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"), help_text=_("Columns: name, phone, email, account_ref, vip, notes.")
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError(
                _("The file is larger than %(mb)s MB.") % {"mb": MAX_IMPORT_BYTES // (1024 * 1024)}
            )
        raw = upload.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(_("The file must be UTF-8 encoded CSV.")) from None
        if "\x00" in text:
            raise ValidationError(_("This does not look like a CSV file."))
        return upload.name, text
