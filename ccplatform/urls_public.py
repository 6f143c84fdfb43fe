"""The provider console: served on the public schema's domains."""

from django.urls import include, path

from tenants import views

urlpatterns = [
    path("", views.console_home, name="home"),
    path("clients/", views.client_list, name="client_list"),
    path("clients/new/", views.client_create, name="client_create"),
    path("clients/<int:client_id>/", views.client_detail, name="client_detail"),
    path("clients/<int:client_id>/status/", views.client_set_status, name="client_set_status"),
    path("clients/<int:client_id>/domains/", views.client_add_domain, name="client_add_domain"),
    path("clients/<int:client_id>/invite/", views.client_invite, name="client_invite"),
    path("users/", views.user_list, name="user_list"),
    path("users/invite/", views.user_invite, name="user_invite"),
    path("users/<int:user_id>/active/", views.user_set_active, name="user_set_active"),
    path(
        "invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"
    ),
    path("audit/", views.audit_log, name="audit_log"),
    path("billing/", include("billing.urls")),
    path("telephony/", include("telephony.urls")),
    path("calls/", include("telephony.config_urls")),
    path("wallboard/", include("routing.live_urls")),
    path("attention/", include("calls.urls")),
    path("", include("recordings.urls_public")),  # recordings/, api/calls/<id>/recording/
    path("agent/", include("agentdesk.urls")),
    # Second factor: provider staff only (they see every client's data).
    path("account/two-factor/", views.totp_setup, name="totp_setup"),
    path("account/two-factor/disable/", views.totp_disable, name="totp_disable"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("tenants.urls_accounts")),
]
