"""Request plumbing for tenancy: which site, which language, which time zone, who may enter."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django_tenants.middleware.main import TenantMainMiddleware

from tenants.access import client_role, provider_role

# Paths every site serves whoever asks (assets, language switch, leaving).
_OPEN_PREFIXES = ("/static/", "/i18n/", "/logout/")


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' host -> schema resolution, with a real 404 page for unknown hosts."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            request.get_host()
        except DisallowedHost:
            from tenants.views import unknown_host

            return unknown_host(request)
        return super().process_request(request)


class TenantLocaleMiddleware:
    """Language: the visitor's own choice, then the company's default, then the browser's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def pick(self, request: HttpRequest) -> str:
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if chosen in self.supported:
            return chosen
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language in self.supported:
            return user.language
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_provider and tenant.language in self.supported:
            return tenant.language
        return translation.get_language_from_request(request)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = self.pick(request)
        request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
        # override() restores the thread's previous language afterwards, so a request never
        # leaves its language behind for whatever runs next on this thread.
        with translation.override(language):
            response = self.get_response(request)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        response.headers.setdefault("Content-Language", language)
        response.headers["Vary"] = ", ".join(
            filter(None, [response.headers.get("Vary"), "Cookie, Accept-Language"])
        )
        return response


class TenantAccessMiddleware:
    """The wall between sites.

    - Client sites: time zone of the company; a suspended company shows its suspension page;
      a signed-in user who is not a member of this company gets 404 on every URL.
    - Provider console: a signed-in user without a provider role gets 404 on every URL.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return self.get_response(request)
        zone = settings.PROVIDER_TIME_ZONE if tenant.is_provider else tenant.time_zone
        timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            blocked = self.blocked(request, tenant)
            if blocked is not None:
                return blocked
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def blocked(self, request: HttpRequest, tenant) -> HttpResponse | None:  # type: ignore[no-untyped-def]
        if request.path.startswith(_OPEN_PREFIXES):
            return None
        user = request.user
        if tenant.is_provider:
            if user.is_authenticated and provider_role(user) is None:  # type: ignore[arg-type]
                return render(request, "404.html", status=404)
            return None
        if tenant.is_suspended:
            return render(request, "tenants/suspended.html", {"client": tenant}, status=403)
        if user.is_authenticated and client_role(user, tenant) is None:  # type: ignore[arg-type]
            return render(request, "404.html", status=404)
        return None
