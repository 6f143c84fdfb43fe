"""Recordings on the provider console and the mask API (included at the site's root)."""

from django.urls import path

from recordings import views

urlpatterns = [
    path("recordings/", views.console_index, name="console_recordings_index"),
    path(
        "recordings/clients/<int:client_id>/",
        views.console_recordings,
        name="console_recordings",
    ),
    path(
        "api/calls/<str:call_id>/recording/mask",
        views.api_mask,
        name="api_recording_mask",
    ),
    path(
        "api/calls/<str:call_id>/recording/unmask",
        views.api_unmask,
        name="api_recording_unmask",
    ),
    path(
        "api/calls/<str:call_id>/recording/start",
        views.api_record,
        name="api_recording_start",
    ),
]
