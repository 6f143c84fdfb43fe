"""A client company's portal: served on that company's own domains."""

from django.urls import include, path

from portal import billing_views, call_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/new/", views.contact_edit, name="contact_create"),
    path("contacts/import/", views.contact_import, name="contact_import"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact_detail"),
    path("contacts/<int:contact_id>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<int:contact_id>/delete/", views.contact_delete, name="contact_delete"),
    path("team/", views.team, name="team"),
    path("team/invite/", views.team_invite, name="team_invite"),
    path("team/invitations/<int:invitation_id>/revoke/", views.team_revoke, name="team_revoke"),
    path("activity/", views.activity, name="activity"),
    path("live/", views.live, name="portal_live"),
    path("settings/", views.company_settings, name="company_settings"),
    path("calls/", include("portal.ivr_urls")),
    path("call-history/", call_views.call_list, name="call_history"),
    path("call-history/export.csv", call_views.call_list_csv, name="call_history_csv"),
    path("call-history/<str:call_id>/", call_views.call_detail, name="call_history_detail"),
    path("recordings/", include("recordings.urls_tenant")),
    path("billing/invoices/", billing_views.invoice_list, name="client_invoices"),
    path(
        "billing/invoices/<int:invoice_id>/",
        billing_views.invoice_detail,
        name="client_invoice",
    ),
    path(
        "billing/invoices/<int:invoice_id>/pdf/",
        billing_views.invoice_pdf,
        name="client_invoice_pdf",
    ),
    path("billing/usage/", billing_views.usage, name="client_usage"),
    path("billing/usage.csv", billing_views.usage_csv, name="client_usage_csv"),
    path("api/billing/invoices/", billing_views.api_invoices, name="api_client_invoices"),
    path(
        "api/billing/invoices/<int:invoice_id>/",
        billing_views.api_invoice,
        name="api_client_invoice",
    ),
    path("api/billing/usage/", billing_views.api_usage, name="api_client_usage"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("tenants.urls_accounts")),
]
