"""Telephony on the provider's host: the CDR intake (machines) and the nodes console (people)."""

from django.urls import path

from telephony import views

urlpatterns = [
    path("cdr/", views.cdr_intake, name="cdr_intake"),
    path("nodes/", views.node_list, name="node_list"),
    path("nodes/new/", views.node_create, name="node_create"),
    path("nodes/<int:node_id>/", views.node_detail, name="node_detail"),
    path("nodes/<int:node_id>/edit/", views.node_edit, name="node_edit"),
    path("nodes/<int:node_id>/cdr-secret/", views.node_rotate_secret, name="node_rotate_secret"),
]
