from django.apps import AppConfig


class DispositionsConfig(AppConfig):
    name = "dispositions"
    verbose_name = "Call dispositions and wrap-up notes (per client)"
    default_auto_field = "django.db.models.BigAutoField"
