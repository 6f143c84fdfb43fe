"""The provider's live wallboard page; its numbers come over the ``/ws/live/`` websocket."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from routing.consumers import LIVE_ROLES
from tenants.access import access_provider


def wallboard_labels() -> dict[str, object]:
    """The words the wallboard's script shows, in the page's language."""
    return {
        "states": {
            "available": _("Available"),
            "offered": _("Ringing"),
            "on_call": _("On a call"),
            "wrap_up": _("Wrap-up"),
            "break": _("On a break"),
            "logged_out": _("Logged out"),
        },
        "live": _("Live"),
        "connecting": _("Connecting…"),
        "reconnecting": _("Disconnected: reconnecting…"),
        "silent": _("No updates: the switchboard is silent"),
        "resyncing": _("Catching up…"),
        "forbidden": _("You may not see the wallboard."),
        "empty": _("No live data yet."),
        "day": _("Today: %(day)s (%(tz)s)"),
    }


@login_required
def wallboard(request: HttpRequest) -> HttpResponse:
    access_provider(request, LIVE_ROLES)
    return render(request, "routing/wallboard.html", {"labels": wallboard_labels()})
