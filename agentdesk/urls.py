"""The agents' console on the provider's host (included at ``/agent/``)."""

from django.urls import path

from agentdesk import views
from dispositions.views import record_disposition

urlpatterns = [
    path("", views.console, name="agent_console"),
    path("clients/<str:schema_name>/", views.client_context, name="agent_client_context"),
    path("dispositions/", record_disposition, name="agent_disposition"),
]
