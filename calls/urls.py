"""Provider console: calls that need attention (included at ``/attention/``)."""

from django.urls import path

from calls import views

urlpatterns = [
    path("", views.attention, name="calls_attention"),
    path(
        "clients/<int:client_id>/reconcile/",
        views.attention_reconcile,
        name="calls_attention_reconcile_tenant",
    ),
    path(
        "clients/<int:client_id>/calls/<str:call_id>/",
        views.attention_call,
        name="calls_attention_call",
    ),
    path(
        "clients/<int:client_id>/calls/<str:call_id>/reconcile/",
        views.attention_reconcile,
        name="calls_attention_reconcile_call",
    ),
    path(
        "clients/<int:client_id>/flags/<int:flag_id>/",
        views.attention_flag,
        name="calls_attention_flag",
    ),
    path(
        "clients/<int:client_id>/flags/<int:flag_id>/resolve/",
        views.attention_resolve_flag,
        name="calls_attention_resolve_flag",
    ),
]
