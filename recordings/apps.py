from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Call recordings (per client)"
    default_auto_field = "django.db.models.BigAutoField"
