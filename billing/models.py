"""The provider's books (public schema): rate plans, the usage ledger, invoices, Stripe state.

Rules the database itself enforces (migration 0002, tested in tests/billing/):

* a rate-plan version that has rated a segment (``locked_at`` set) cannot change: its row
  (except being superseded by a correction), its rates and its discounts are frozen;
* the usage ledger is append-only: a correction is a reversing entry plus a new one;
* a finalized invoice cannot change except for its payment/void status and Stripe ids, and
  its lines cannot change at all; invoice numbers are unique per series and year.

Pricing itself is the pure core in :mod:`billing.rating`; :mod:`billing.adapters` maps rows
to and from it. Writes go through :mod:`billing.actions` (``do_*``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q

from billing.rating import Origin, SegmentKind, TierMode
from tenants.models import CURRENCIES, Client, User

KIND_CHOICES = [(k.value, k.value) for k in SegmentKind]
ORIGIN_CHOICES = [(o.value, o.value) for o in Origin]

# Amounts: up to 6 decimal places (the core's micro-units); invoice amounts are quantized to
# the currency's minor unit before they are stored.
MONEY = {"max_digits": 20, "decimal_places": 6}


class RatePlan(models.Model):
    """A named price list in one currency; its prices live in :class:`PlanVersion` rows."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"


class PlanVersion(models.Model):
    """One version of a plan, in force from ``valid_from`` until the next version starts.

    ``locked_at`` is set the first time a segment is rated with the version; from then on the
    version, its rates and discounts are immutable (a database trigger refuses changes). A
    mistake in a used version is corrected by :func:`billing.actions.do_correct_plan_version`:
    a copy with the same ``valid_from`` that *supersedes* it; the ledger is then re-rated.
    """

    plan = models.ForeignKey(RatePlan, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    recording_storage_price = models.DecimalField(default=0, **MONEY)
    monthly_platform_fee = models.DecimalField(default=0, **MONEY)
    seat_fee = models.DecimalField(default=0, **MONEY)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=6, default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "valid_from", "version"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "version"], name="billing_plan_version_unique"),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0, tax_rate__lte=1), name="billing_tax_rate_fraction"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code} v{self.version} from {self.valid_from}"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class PlanRate(models.Model):
    """The price of one segment kind in a version; with ``origin`` set, an override for it."""

    version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="rates")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    origin = models.CharField(max_length=16, choices=ORIGIN_CHOICES, blank=True)
    price_per_minute = models.DecimalField(**MONEY)
    increment_first = models.PositiveIntegerField(default=1)
    increment_next = models.PositiveIntegerField(default=1)
    minimum_seconds = models.PositiveIntegerField(default=0)
    connect_fee = models.DecimalField(default=0, **MONEY)
    included_minutes = models.PositiveIntegerField(default=0)
    tier_mode = models.CharField(
        max_length=16,
        choices=[(m.value, m.value) for m in TierMode],
        default=TierMode.GRADUATED.value,
    )
    #: ``[[from_minutes, "price"], ...]``, strictly increasing ``from_minutes``.
    tiers = models.JSONField(default=list, blank=True)
    attempt_fee = models.DecimalField(default=0, **MONEY)

    class Meta:
        ordering = ["version", "kind", "origin"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "kind", "origin"], name="billing_rate_per_kind_origin"
            ),
            models.CheckConstraint(
                condition=Q(increment_first__gte=1, increment_next__gte=1),
                name="billing_rate_increment_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}{'/' + self.origin if self.origin else ''}: {self.price_per_minute}"


class PlanDiscount(models.Model):
    version = models.ForeignKey(PlanVersion, on_delete=models.CASCADE, related_name="discounts")
    code = models.CharField(max_length=64)
    percent = models.DecimalField(max_digits=9, decimal_places=6)
    ends_on = models.DateField()
    kinds = models.JSONField(default=list, blank=True)
    include_fees = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="billing_discount_code_unique")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.percent}% until {self.ends_on}"


class BillingAccount(models.Model):
    """A client company's billing set-up: its plan, contracted seats, Stripe customer."""

    tenant = models.OneToOneField(Client, on_delete=models.PROTECT, related_name="billing")
    plan = models.ForeignKey(RatePlan, on_delete=models.PROTECT, related_name="accounts")
    seats = models.PositiveIntegerField(default=0)
    payment_terms_days = models.PositiveIntegerField(default=14)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant} on {self.plan.code}"


class ProviderProfile(models.Model):
    """The provider's own legal and payment details printed on invoices (one row)."""

    legal_name = models.CharField(max_length=300)
    legal_address = models.TextField(blank=True)
    tax_id = models.CharField(max_length=64, blank=True)
    registration_number = models.CharField(max_length=64, blank=True)
    email = models.EmailField(blank=True)
    bank_name = models.CharField(max_length=200, blank=True)
    iban = models.CharField(max_length=64, blank=True)
    swift = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.legal_name


class LedgerEntry(models.Model):
    """One rated segment, written once; append-only (the database refuses UPDATE/DELETE).

    ``entry_type`` is ``charge`` or ``reversal``. A reversal repeats the charge's segment with
    negated ``billable_seconds`` and ``amount`` and points at it (``reverses``); summing any
    set of entries therefore gives net usage. ``amount`` is the segment's *list* amount
    (6 decimals, :func:`billing.rating.rate_segment`); invoices price the period's aggregate
    (included minutes, tiers) with :func:`billing.rating.rate_period`.

    ``period_start`` is the tenant-local first day of the period the entry is *booked* in:
    the period the segment started in, or, if that period was already closed (invoiced), the
    next open one, with ``late`` set.
    """

    class EntryType(models.TextChoices):
        CHARGE = "charge", "charge"
        REVERSAL = "reversal", "reversal"

    # No index of its own: the (tenant, period, kind) and (tenant, leg) indexes lead with it, and
    # every index is paid for on each of the ledger's many inserts.
    tenant = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+", db_index=False)
    plan_version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="+")
    entry_type = models.CharField(max_length=8, choices=EntryType.choices)
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )
    call_id = models.CharField(max_length=64)
    leg_uuid = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    origin = models.CharField(max_length=16, choices=ORIGIN_CHOICES)
    start_ms = models.BigIntegerField()
    end_ms = models.BigIntegerField()
    answered = models.BooleanField(default=True)
    hangup_cause = models.CharField(max_length=64, blank=True)
    agent = models.CharField(max_length=200, blank=True)
    queue = models.CharField(max_length=200, blank=True)
    disposition = models.CharField(max_length=16)
    billable_seconds = models.BigIntegerField()
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    period_start = models.DateField()
    late = models.BooleanField(default=False)
    long_segment = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start_ms", "id"]
        constraints = [
            # "Each rated segment recorded once": a segment is (leg, kind, start); it is charged
            # at most once per plan version, and each such charge reversed at most once.
            models.UniqueConstraint(
                fields=["leg_uuid", "kind", "start_ms", "plan_version", "entry_type"],
                name="billing_ledger_once_per_segment_version",
            ),
            models.CheckConstraint(
                condition=Q(end_ms__gte=models.F("start_ms")), name="billing_ledger_end_after_start"
            ),
            models.CheckConstraint(
                condition=(
                    Q(entry_type="charge", reverses__isnull=True)
                    | Q(entry_type="reversal", reverses__isnull=False)
                ),
                name="billing_ledger_reversal_points_at_charge",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "period_start", "kind"], name="billing_ledger_period"),
            models.Index(fields=["tenant", "leg_uuid"], name="billing_ledger_leg"),
        ]

    def __str__(self) -> str:
        return f"{self.entry_type} {self.leg_uuid}/{self.kind}@{self.start_ms}: {self.amount}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("the ledger is append-only: write a reversing entry instead")
        super().save(*args, **kwargs)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def start_utc(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=self.start_ms)


class InvoiceCounter(models.Model):
    """The last number issued per series and year; locked (SELECT ... FOR UPDATE) to number."""

    series = models.CharField(max_length=8)
    year = models.PositiveIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "year"], name="billing_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class Invoice(models.Model):
    """An invoice (or credit note) of one tenant for one period.

    Drafts have no number and are recomputed freely. Finalizing numbers it (gapless per series
    and year), snapshots both parties' legal details and freezes it: afterwards only
    ``status`` (finalized -> paid / void), its timestamps and Stripe ids may change.
    """

    class Kind(models.TextChoices):
        INVOICE = "invoice", "invoice"
        CREDIT_NOTE = "credit_note", "credit note"

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        FINALIZED = "finalized", "finalized"
        PAID = "paid", "paid"
        VOID = "void", "void"

    tenant = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    series = models.CharField(max_length=8)
    year = models.PositiveIntegerField(null=True, blank=True)
    number = models.PositiveIntegerField(null=True, blank=True)
    period_start = models.DateField()
    period_end = models.DateField()  # exclusive
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    language = models.CharField(max_length=8)
    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tax_rate = models.DecimalField(max_digits=7, decimal_places=6, default=0)
    subtotal_amount = models.DecimalField(default=0, **MONEY)
    tax_amount = models.DecimalField(default=0, **MONEY)
    total_amount = models.DecimalField(default=0, **MONEY)
    provider_details = models.JSONField(default=dict, blank=True)
    client_details = models.JSONField(default=dict, blank=True)
    credited_invoice = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes"
    )
    reason = models.TextField(blank=True)
    stripe_invoice_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "tenant__name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "year", "number"], name="billing_invoice_number_unique"
            ),
            # One live invoice per tenant and period (a void one may be replaced).
            models.UniqueConstraint(
                fields=["tenant", "period_start"],
                condition=Q(kind="invoice") & ~Q(status="void"),
                name="billing_one_live_invoice_per_period",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False, year__isnull=False),
                name="billing_issued_invoice_has_number",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", credited_invoice__isnull=True)
                | Q(kind="credit_note", credited_invoice__isnull=False),
                name="billing_credit_note_references_invoice",
            ),
        ]

    def __str__(self) -> str:
        return self.display_number

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The application-side guard; the trigger in migration 0002 is the real wall.
        if self.pk is not None and not self.is_draft and not kwargs.get("update_fields"):
            raise ValueError(
                f"invoice {self.display_number} is {self.status}: it cannot be edited "
                "(issue a credit note instead)"
            )
        super().save(*args, **kwargs)

    @property
    def display_number(self) -> str:
        if self.number is None:
            return f"DRAFT-{self.pk}"
        return f"{self.series}-{self.year}-{self.number:05d}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def tax_percent(self) -> str:
        return format((self.tax_rate * 100).normalize(), "f")


class InvoiceLine(models.Model):
    """One line; ``kind``/``origins``/``late`` say which ledger entries make it up."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    code = models.CharField(max_length=100)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=20, decimal_places=4)
    unit = models.CharField(max_length=32)
    unit_price = models.DecimalField(**MONEY)
    exact_amount = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, blank=True)
    origins = models.JSONField(default=list, blank=True)
    late = models.BooleanField(default=False)
    billable_seconds = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "position"], name="billing_line_position_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"

    @property
    def quantity_display(self) -> str:
        """The quantity without trailing zeros (``2.5``, ``10``)."""
        return format(self.quantity.normalize(), "f")

    @property
    def unit_price_display(self) -> str:
        """The unit price with the currency's decimals, or more if the price has them."""
        from billing.rating import currency_exponent

        exp = currency_exponent(self.invoice.currency)
        price = self.unit_price.normalize()
        if price.as_tuple().exponent > -exp:  # type: ignore[operator]
            price = price.quantize(Decimal(1).scaleb(-exp))
        return format(price, "f")

    @property
    def drills_down(self) -> bool:
        return bool(self.kind) and self.code.split(":")[0] in {"usage", "included", "late"}


class InvoicePdf(models.Model):
    """The rendered PDF of an invoice (made by a job, kept so downloads are instant)."""

    invoice = models.OneToOneField(Invoice, on_delete=models.CASCADE, related_name="pdf")
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"PDF of invoice {self.invoice_id}"


class PeriodExport(models.Model):
    """A bulk zip of a period (PDFs + CSVs) built by a job for the finance page."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    period_start = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    content = models.BinaryField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.period_start:%Y-%m} ({self.status})"


class StripeEvent(models.Model):
    """Webhook events already processed (by Stripe's event id): replays are ignored."""

    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=100)
    handled = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
