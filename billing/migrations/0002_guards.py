"""Database walls for the books (they hold whoever writes: the app, psql, a bad migration).

* ``billing_ledgerentry`` is append-only: UPDATE and DELETE are refused (corrections are
  reversing entries).
* A plan version that rated a segment (``locked_at`` set) cannot change, except to be marked
  superseded by a correction; its rates and discounts cannot be added, changed or removed.
* An issued invoice (not a draft) cannot change except finalized -> paid / void with their
  timestamps and the Stripe id; it is never deleted; lines of an issued invoice are frozen.

TRUNCATE is left to the table owner (the test runner flushes with it).
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the usage ledger is append-only: % refused on billing_ledgerentry (write a reversing entry)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER billing_ledger_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();

CREATE OR REPLACE FUNCTION billing_planversion_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.locked_at IS NULL THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE'
       OR (to_jsonb(NEW) - 'superseded_by_id') IS DISTINCT FROM (to_jsonb(OLD) - 'superseded_by_id')
       OR (OLD.superseded_by_id IS NOT NULL AND NEW.superseded_by_id IS DISTINCT FROM OLD.superseded_by_id) THEN
        RAISE EXCEPTION 'plan version % has rated segments and is immutable: % refused (add a new version or correct it with a superseding one)', OLD.id, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER billing_planversion_guard
    BEFORE UPDATE OR DELETE ON billing_planversion
    FOR EACH ROW EXECUTE FUNCTION billing_planversion_guard();

CREATE OR REPLACE FUNCTION billing_plan_terms_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN ids := ARRAY[NEW.version_id];
    ELSIF TG_OP = 'DELETE' THEN ids := ARRAY[OLD.version_id];
    ELSE ids := ARRAY[NEW.version_id, OLD.version_id];
    END IF;
    IF EXISTS (SELECT 1 FROM billing_planversion WHERE id = ANY(ids) AND locked_at IS NOT NULL) THEN
        RAISE EXCEPTION 'plan version has rated segments and is immutable: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER billing_planrate_guard
    BEFORE INSERT OR UPDATE OR DELETE ON billing_planrate
    FOR EACH ROW EXECUTE FUNCTION billing_plan_terms_guard();
CREATE TRIGGER billing_plandiscount_guard
    BEFORE INSERT OR UPDATE OR DELETE ON billing_plandiscount
    FOR EACH ROW EXECUTE FUNCTION billing_plan_terms_guard();

CREATE OR REPLACE FUNCTION billing_invoice_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := ARRAY['status', 'paid_at', 'voided_at', 'stripe_invoice_id', 'updated_at'];
BEGIN
    IF OLD.status = 'draft' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice %-%-% is %: issued invoices are never deleted', OLD.series, OLD.year, OLD.number, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (to_jsonb(NEW) - mutable) IS DISTINCT FROM (to_jsonb(OLD) - mutable) THEN
        RAISE EXCEPTION 'invoice %-%-% is %: it is immutable (issue a credit note)', OLD.series, OLD.year, OLD.number, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.status <> OLD.status AND NOT (OLD.status = 'finalized' AND NEW.status IN ('paid', 'void')) THEN
        RAISE EXCEPTION 'invoice %-%-% cannot go from % to %', OLD.series, OLD.year, OLD.number, OLD.status, NEW.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER billing_invoice_guard
    BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_guard();

CREATE OR REPLACE FUNCTION billing_invoiceline_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN ids := ARRAY[NEW.invoice_id];
    ELSIF TG_OP = 'DELETE' THEN ids := ARRAY[OLD.invoice_id];
    ELSE ids := ARRAY[NEW.invoice_id, OLD.invoice_id];
    END IF;
    IF EXISTS (SELECT 1 FROM billing_invoice WHERE id = ANY(ids) AND status <> 'draft') THEN
        RAISE EXCEPTION 'lines of an issued invoice are immutable: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER billing_invoiceline_guard
    BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_guard();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS billing_invoiceline_guard ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_guard();
DROP TRIGGER IF EXISTS billing_invoice_guard ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_guard();
DROP TRIGGER IF EXISTS billing_plandiscount_guard ON billing_plandiscount;
DROP TRIGGER IF EXISTS billing_planrate_guard ON billing_planrate;
DROP FUNCTION IF EXISTS billing_plan_terms_guard();
DROP TRIGGER IF EXISTS billing_planversion_guard ON billing_planversion;
DROP FUNCTION IF EXISTS billing_planversion_guard();
DROP TRIGGER IF EXISTS billing_ledger_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledger_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
