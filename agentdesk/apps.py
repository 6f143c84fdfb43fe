from django.apps import AppConfig


class AgentdeskConfig(AppConfig):
    name = "agentdesk"
    verbose_name = "The agents' realtime console"
    default_auto_field = "django.db.models.BigAutoField"
