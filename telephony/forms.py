from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class NodeForm(forms.Form):
    """Switch node fields; validation that needs the database is ``actions.check_node_fields``."""

    name = forms.CharField(
        label=_("Name"),
        max_length=63,
        help_text=_("Lowercase letters, digits and dashes, e.g. fs-1. The node's CDR user name."),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    esl_host = forms.CharField(
        label=_("Event Socket host"),
        max_length=255,
        help_text=_("The node's private address, as in its event_socket.conf.xml listen-ip."),
    )
    esl_port = forms.IntegerField(label=_("Event Socket port"), min_value=1, max_value=65535)
    esl_password = forms.CharField(
        label=_("Event Socket password"),
        max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False)

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["esl_password"].required = False
            self.fields["esl_password"].help_text = _("Leave empty to keep the current password.")
