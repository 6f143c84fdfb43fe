from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls, legs and metered segments (per client)"
    default_auto_field = "django.db.models.BigAutoField"
