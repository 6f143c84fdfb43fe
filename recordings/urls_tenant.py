"""Recordings on a client company's portal (included at ``recordings/``)."""

from django.urls import path

from recordings import views

urlpatterns = [
    path("", views.portal_recordings, name="recordings"),
    path("clearances/", views.portal_clearances, name="recording_clearances"),
]
