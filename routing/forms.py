"""Forms for queues, agents and certifications (provider console)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from routing.models import Agent, Certification, Queue
from telephony import config_checks
from telephony.config_forms import ConfigModelForm, client_choices, one_field
from tenants.models import Role, User


class QueueForm(ConfigModelForm):
    skills = forms.CharField(
        label=_("Skills"),
        required=False,
        help_text=_("Skill=minimum level pairs, e.g. billing=2, ukrainian=1."),
    )
    relaxation = forms.CharField(
        label=_("Skill relaxation"),
        required=False,
        help_text=_(
            "After seconds=level cap pairs, e.g. 30=2, 60=0 (0: the skill is no longer needed)."
        ),
    )
    overflow = forms.CharField(
        label=_("Overflow rules"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            'JSON list, e.g. [{"kind": "ewt", "threshold": 300, "target": "callback"}]; kinds:'
            " ewt, queue_length, available_ratio, time_of_day (with until), max_wait; targets:"
            " queue:<id>, callback, voicemail, client:..."
        ),
    )

    class Meta:
        model = Queue
        fields = [
            "queue_id",
            "tenant",
            "name",
            "strategy",
            "skills",
            "relaxation",
            "clearance",
            "wrap_up_s",
            "priority_head_start_s",
            "sticky_window_s",
            "ring_all_max",
            "offer_timeout_s",
            "no_answer_penalty_s",
            "max_missed_offers",
            "announce_interval_s",
            "announce_granularity_s",
            "callback_over_s",
            "overflow",
            "estimator",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = client_choices()
        queue: Queue = self.instance
        if queue.pk:
            # A queue never moves to another client, nor changes its id (calls and rules
            # name it).
            self.fields["queue_id"].disabled = True
            self.fields["tenant"].disabled = True
        if not self.is_bound:
            self.initial["skills"] = config_checks.format_pairs(queue.skills or [])
            self.initial["relaxation"] = config_checks.format_pairs(queue.relaxation or [])
            self.initial["overflow"] = json.dumps(queue.overflow) if queue.overflow else ""

    def clean_skills(self) -> list[list[Any]]:
        text = self.cleaned_data.get("skills", "")
        pairs = one_field(lambda: config_checks.parse_pairs(text, "skills"), "skills")
        return [[k, v] for k, v in pairs]

    def clean_relaxation(self) -> list[list[Any]]:
        text = self.cleaned_data.get("relaxation", "")
        pairs = one_field(
            lambda: config_checks.parse_pairs(text, "relaxation", key_float=True), "relaxation"
        )
        return [[k, v] for k, v in pairs]

    def clean_overflow(self) -> list[Any]:
        text = self.cleaned_data.get("overflow", "")
        return one_field(lambda: config_checks.parse_json_list(text, "overflow"), "overflow")


def agent_users(agent: Agent | None) -> Any:
    """Provider agents without an agent record yet (plus this one's own user)."""
    users = User.objects.filter(
        memberships__tenant__isnull=True, memberships__role=Role.AGENT, is_active=True
    )
    taken = Agent.objects.all()
    if agent is not None and agent.pk:
        taken = taken.exclude(pk=agent.pk)
    return users.exclude(pk__in=taken.values("user_id")).order_by("email")


class AgentForm(ConfigModelForm):
    class Meta:
        model = Agent
        fields = ["user", "agent_id", "endpoint", "clearance", "active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = agent_users(self.instance)
        if self.instance.pk:
            self.fields["user"].disabled = True
            self.fields["agent_id"].disabled = True


class CertificationForm(ConfigModelForm):
    skills = forms.CharField(
        label=_("Skills"),
        required=False,
        help_text=_("Skill=level pairs, e.g. billing=3, ukrainian=2."),
    )

    class Meta:
        model = Certification
        fields = ["tenant", "skills"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = client_choices()
        if self.instance.pk:
            self.fields["tenant"].disabled = True
        if not self.is_bound:
            self.initial["skills"] = config_checks.format_pairs(
                (self.instance.skills or {}).items()
            )

    def clean_skills(self) -> dict[str, int]:
        text = self.cleaned_data.get("skills", "")
        return one_field(lambda: config_checks.parse_skills(text, "skills"), "skills")
