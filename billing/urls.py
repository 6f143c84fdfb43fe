"""Finance pages of the provider console (included under ``billing/`` in urls_public)."""

from django.urls import path

from billing import views

urlpatterns = [
    path("", views.finance_home, name="billing_home"),
    path("periods/<str:period>/run/", views.period_run, name="billing_period_run"),
    path("periods/<str:period>/finalize/", views.period_finalize, name="billing_period_finalize"),
    path(
        "periods/<str:period>/invoices.csv", views.period_invoices_csv, name="billing_invoices_csv"
    ),
    path("periods/<str:period>/usage.csv", views.period_usage_csv, name="billing_usage_csv"),
    path("periods/<str:period>/stripe/", views.period_push, name="billing_period_push"),
    path("periods/<str:period>/export/", views.period_export, name="billing_period_export"),
    path("exports/<int:export_id>/", views.export_download, name="billing_export"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="billing_invoice"),
    path(
        "invoices/<int:invoice_id>/lines/<int:line_id>/",
        views.invoice_line_usage,
        name="billing_line_usage",
    ),
    path("invoices/<int:invoice_id>/finalize/", views.invoice_finalize, name="billing_finalize"),
    path("invoices/<int:invoice_id>/status/", views.invoice_status, name="billing_status"),
    path("invoices/<int:invoice_id>/pdf/", views.invoice_pdf, name="billing_pdf"),
    # Machine endpoint: Stripe calls it, authenticated by its signature, not a session.
    path("stripe/webhook/", views.stripe_webhook, name="billing_stripe_webhook"),
]
