"""Money in the rating core: currencies, internal precision and THE rounding rule.

This module is the single place where rounding is defined; everything else calls it.

The rounding rule
-----------------
1. **Inner loop: no money at all.** Per segment the engine only adds integers: milliseconds,
   billable seconds, segment counts. Prices are converted once, when a plan is built, to integer
   *micro-units* (millionths of the currency's major unit, i.e. 6 decimal places), so a price must
   be representable with at most 6 decimal places (``Decimal('0.10')``, ``Decimal('0.012345')``).
2. **An exact line amount has 6 decimal places.** A priced quantity (``seconds * price_per_minute
   / 60``, ``count * fee``, ``fee * fee_fraction``) is computed exactly in integers and rounded
   *once* to a whole micro-unit, half up. A single segment's list amount (``rate_segment``) is
   also a 6-decimal amount: sub-cent precision is kept.
3. **An invoice line is rounded once to the currency's minor unit**, from its 6-decimal amount,
   with ``ROUND_HALF_UP`` (half away from zero; invoice amounts are non-negative except discount
   lines, whose magnitude is rounded the same way). Tax is computed from the rounded subtotal and
   rounded the same way. Subtotal is the exact sum of the rounded lines and total is subtotal +
   tax, so the totals always equal the sum of the lines to the last minor unit.

Why half up and not banker's rounding (half even): an invoice is rounded a handful of times (once
per line, once for tax), not millions of times, so the statistical bias that half-even removes is
at most half a minor unit per line and does not accumulate; in exchange every client, auditor and
spreadsheet (``ROUND()`` in Excel/LibreOffice, Ukrainian and EU invoicing practice) reproduces our
figures with the rule they already use. Rounding happens on aggregated lines only, never per
segment, which is where a biased rule would have mattered.

Splitting bound (what "rounding only" means)
--------------------------------------------
Let ``u`` be the minor unit (0.01 UAH, 1 JPY) and ``µ`` = 0.000001. Cut a period into ``k``
sub-periods and price each separately, with linear prices (no included minutes, no tiers; monthly
fees split by ``fee_fraction`` summing to 1). Each line's exact value is then the sum of its
sub-period values, and each line is rounded ``k + 1`` times (k parts, one whole), each time by at
most ``µ/2`` and then ``u/2``; so, per line,
``|sum of the k rounded sub-period lines - the rounded whole-period line| <= (k+1)(u+µ)/2``.
Over ``L`` priced lines the subtotal before discounts differs by at most
``B = L (k+1)(u+µ)/2``; each discount of share ``p`` (0.1 for 10 %) adds ``p B + (k+1)(u+µ)/2``,
giving ``B'``; tax adds ``r B' + (k+1)(u+µ)/2`` (``r`` the tax rate), so the totals differ by at
most ``(1 + r) B' + (k+1)(u+µ)/2``. The property tests check exactly this bound. Merging *usage*
(``UsageAccumulator.merge``) instead of summing invoices is exact: the aggregates are integers,
so it changes nothing at all. With included minutes or tiers the period is the unit the contract
prices, so sub-period invoices are not meant to add up; merge usage instead.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import CurrencyMismatchError, InvalidPlanError

__all__ = [
    "CURRENCY_EXPONENTS",
    "MICRO_DIGITS",
    "MICROS_PER_UNIT",
    "check_same_currency",
    "currency_exponent",
    "decimal_from_units",
    "div_round_half_up",
    "micros_to_decimal",
    "micros_to_minor",
    "minor_to_decimal",
    "to_micros",
]

#: Decimal places kept internally for amounts and prices (micro-units of the major unit).
MICRO_DIGITS = 6
MICROS_PER_UNIT = 10**MICRO_DIGITS

#: ISO 4217 minor-unit exponents of the currencies we invoice in (extend as contracts need).
#: Only currencies listed here can be priced: guessing an exponent would mis-round an invoice.
CURRENCY_EXPONENTS: dict[str, int] = {
    "UAH": 2,
    "EUR": 2,
    "USD": 2,
    "PLN": 2,
    "GBP": 2,
    "CHF": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "MDL": 2,
    "GEL": 2,
    "KZT": 2,
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
    "TND": 3,
}


def currency_exponent(currency: str) -> int:
    """Return the number of decimal places of ``currency``'s minor unit (UAH 2, JPY 0).

    Raises :class:`InvalidPlanError` for a currency not in :data:`CURRENCY_EXPONENTS`.
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidPlanError(
            f"unknown currency {currency!r}: add its ISO 4217 minor-unit exponent to "
            "CURRENCY_EXPONENTS before pricing in it"
        ) from None


def check_same_currency(expected: str, actual: str, what: str) -> None:
    """Raise :class:`CurrencyMismatchError` unless ``expected == actual``."""
    if expected != actual:
        raise CurrencyMismatchError(f"{what}: expected currency {expected}, got {actual}")


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Return ``numerator / denominator`` rounded to an integer, halves away from zero.

    Integer-only (no Decimal, no float), so it is exact for any size. ``denominator`` must be
    positive. This is the only rounding primitive of the core.
    """
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def to_micros(value: Decimal | int, what: str, *, allow_negative: bool = False) -> int:
    """Convert a configured price or rate to integer micro-units, exactly.

    ``value`` must be a :class:`~decimal.Decimal` or an ``int`` (a float cannot hold 0.10 exactly
    and is rejected), finite, non-negative unless ``allow_negative``, with at most
    :data:`MICRO_DIGITS` decimal places. ``what`` names the field in the error message.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidPlanError(
            f"{what} must be a Decimal or an int, got {type(value).__name__} {value!r}"
            + (
                " (floats cannot hold money exactly: use Decimal('...'))"
                if isinstance(value, float)
                else ""
            )
        )
    dec = Decimal(value)
    if not dec.is_finite():
        raise InvalidPlanError(f"{what} must be finite, got {value!r}")
    if dec < 0 and not allow_negative:
        raise InvalidPlanError(f"{what} must not be negative, got {value}")
    try:
        scaled = dec.scaleb(MICRO_DIGITS)
        integral = scaled.to_integral_value()
    except InvalidOperation:  # pragma: no cover - only for absurd exponents
        raise InvalidPlanError(f"{what} is out of range: {value}") from None
    if scaled != integral:
        raise InvalidPlanError(
            f"{what} has more than {MICRO_DIGITS} decimal places ({value}); the rating core keeps "
            f"amounts to {MICRO_DIGITS} places"
        )
    return int(integral)


def micros_to_decimal(micros: int) -> Decimal:
    """Return the exact :class:`Decimal` with 6 decimal places for an amount in micro-units."""
    return decimal_from_units(micros, MICRO_DIGITS)


def micros_to_minor(micros: int, exponent: int) -> int:
    """Round an amount in micro-units to the currency's minor unit (the invoice-line rounding).

    Returns an integer count of minor units (cents, kopecks, yen), rounded half up from the
    6-decimal amount.
    """
    return div_round_half_up(micros, 10 ** (MICRO_DIGITS - exponent))


def minor_to_decimal(minor: int, exponent: int) -> Decimal:
    """Return the exact :class:`Decimal` with ``exponent`` decimal places for ``minor`` units."""
    return decimal_from_units(minor, exponent)


def decimal_from_units(units: int, places: int) -> Decimal:
    """Return ``units * 10**-places`` as an exact :class:`Decimal` with ``places`` decimals."""
    # Built from the digit tuple rather than by division, so the result is exact whatever the
    # caller's decimal context (precision, rounding, traps) happens to be.
    sign = 1 if units < 0 else 0
    digits = tuple(int(ch) for ch in str(abs(units)))
    return Decimal((sign, digits, -places))
