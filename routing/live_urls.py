"""The live wallboard on the provider's host (included at ``/wallboard/``)."""

from django.urls import path

from routing import live_views

urlpatterns = [path("", live_views.wallboard, name="wallboard")]
