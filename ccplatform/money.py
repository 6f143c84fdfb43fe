"""Money and dates for people: formatted per currency and language (Babel/CLDR).

Amounts are ``Decimal`` everywhere; this module only turns them into text at the edge.
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

# The interface language picks the number conventions; the tenant's country isn't modelled.
_LOCALES = {"en": "en_GB", "ru": "ru_RU", "uk": "uk_UA"}


def format_money(amount: Decimal, currency: str, language: str) -> str:
    """E.g. ``format_money(Decimal("1234.5"), "UAH", "uk")`` -> ``'1 234,50 ₴'``."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, got {type(amount).__name__}")
    return format_currency(amount, currency, locale=_LOCALES.get(language, "en_GB"))
