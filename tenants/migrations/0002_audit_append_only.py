"""Make the audit log append-only in the database itself.

A trigger refuses UPDATE and DELETE on every row, whoever the caller is (the application,
a psql session, a buggy migration). TRUNCATE is left to the table owner: Django's test
runner flushes tables with it, and retention purges will need a deliberate, audited path.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tenants_auditevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: % refused on tenants_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER tenants_auditevent_append_only
    BEFORE UPDATE OR DELETE ON tenants_auditevent
    FOR EACH ROW EXECUTE FUNCTION tenants_auditevent_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS tenants_auditevent_append_only ON tenants_auditevent;
DROP FUNCTION IF EXISTS tenants_auditevent_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
