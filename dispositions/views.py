"""The console's wrap-up endpoint, on the provider's host: ``POST /agent/dispositions/``.

Body (JSON, or a form): ``tenant`` (the client's schema name, as the call's pushes name it),
``call_id``, ``code``, ``note`` (optional). Answers JSON ``{"ok": true, "created": bool}``, or
``{"ok": false, "message": ...}`` with 400 (bad input or code), 404 (not an agent of that
client, or a call this agent did not handle) or 409 (the call is not recorded yet: the
switchboard writes it when it ends; the console retries).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from agentdesk.access import certified_tenant, console_agent
from dispositions.actions import (
    DispositionError,
    call_handled_by,
    check_disposition,
    do_record_disposition,
)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"ok": False, "message": message}, status=status)


@require_POST
def record_disposition(request: HttpRequest) -> JsonResponse:
    tenant_here = getattr(request, "tenant", None)
    if tenant_here is None or not tenant_here.is_provider:
        return _error("not found", 404)
    agent = console_agent(request.user)
    if agent is None:
        return _error("not found", 404)
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return _error("the body is not JSON", 400)
    else:
        data = request.POST.dict()
    try:
        posted = check_disposition(data)
        tenant = certified_tenant(agent, posted.tenant)
        if tenant is None:
            return _error("not found", 404)
        handled = call_handled_by(tenant, posted.call_id, agent.agent_id)
        if handled is None:
            return _error("the call is not recorded yet", 409)
        if not handled:
            return _error("not found", 404)
        _row, created = do_record_disposition(tenant, agent.agent_id, posted)
    except DispositionError as exc:
        return _error(str(exc), exc.status)
    return JsonResponse({"ok": True, "created": created})
