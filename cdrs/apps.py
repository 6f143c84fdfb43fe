from django.apps import AppConfig


class CdrsConfig(AppConfig):
    name = "cdrs"
    verbose_name = "Call detail records (per client)"
    default_auto_field = "django.db.models.BigAutoField"
