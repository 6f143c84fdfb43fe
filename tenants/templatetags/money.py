from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils import translation

from ccplatform.money import format_money

register = template.Library()


@register.simple_tag(takes_context=True)
def money(context, amount: Decimal, currency: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """``{% money amount %}``: in the site tenant's currency unless one is given."""
    if currency is None:
        tenant = context.get("site_tenant")
        currency = tenant.currency if tenant is not None else "UAH"
    return format_money(Decimal(amount), currency, translation.get_language() or "en")
