"""Provider console: call configuration (numbers, call policies, queues, agents)."""

from django.urls import path

from routing import views as routing_views
from telephony import config_views

urlpatterns = [
    path("numbers/", config_views.number_list, name="calls_number_list"),
    path("numbers/new/", config_views.number_create, name="calls_number_create"),
    path("numbers/<int:number_id>/", config_views.number_edit, name="calls_number_edit"),
    path("numbers/<int:number_id>/delete/", config_views.number_delete, name="calls_number_delete"),
    path("policies/", config_views.policy_list, name="calls_policy_list"),
    path("policies/<int:client_id>/", config_views.policy_edit, name="calls_policy_edit"),
    path("queues/", routing_views.queue_list, name="calls_queue_list"),
    path("queues/new/", routing_views.queue_create, name="calls_queue_create"),
    path("queues/<int:queue_pk>/", routing_views.queue_edit, name="calls_queue_edit"),
    path("agents/", routing_views.agent_list, name="calls_agent_list"),
    path("agents/new/", routing_views.agent_create, name="calls_agent_create"),
    path("agents/<int:agent_pk>/", routing_views.agent_edit, name="calls_agent_edit"),
    path(
        "agents/<int:agent_pk>/certifications/new/",
        routing_views.certification_create,
        name="calls_certification_create",
    ),
    path(
        "certifications/<int:certification_id>/",
        routing_views.certification_edit,
        name="calls_certification_edit",
    ),
    path(
        "certifications/<int:certification_id>/delete/",
        routing_views.certification_delete,
        name="calls_certification_delete",
    ),
]
