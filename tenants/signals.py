"""Signals other apps hook into (e.g. telephony stops a suspended client's calls)."""

from django.dispatch import Signal

# Sent after commit when a client's status changes; kwargs: client, previous, status.
client_status_changed = Signal()
