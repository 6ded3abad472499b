"""NOTIFY staging_slots_changed after every statement that writes marts.staging_slots.

Long-running readers (the Staging API) keep the slot list in memory and LISTEN on this
channel to drop it; see registry_changes.py. A statement-level trigger sends one
notification per statement, and PostgreSQL folds equal notifications of one transaction into
one, so a claim costs a single message however many rows it touched.
"""

SQL = r"""
CREATE FUNCTION marts.staging_slots_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('staging_slots_changed', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER staging_slots_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON marts.staging_slots FOR EACH STATEMENT EXECUTE FUNCTION marts.staging_slots_notify();
"""
