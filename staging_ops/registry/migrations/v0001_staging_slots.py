"""marts.staging_slots, its rules, and the append-only marts.staging_slot_events."""

SQL = r"""
CREATE SCHEMA IF NOT EXISTS marts;

CREATE TABLE marts.staging_slots (
    slot_id     integer PRIMARY KEY CHECK (slot_id > 0),
    identifier  text NOT NULL UNIQUE,
    subdomain   text NOT NULL,
    role        text NOT NULL CHECK (role IN ('qa', 'staging')),
    status      text NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'claimed')),
    task        text CHECK (task ~ '^[A-Z][A-Z0-9]*-[0-9]+$'),
    owner       text CHECK (owner <> ''),
    branch      text,
    commit      text,
    note        text,
    claimed_at  timestamptz,
    expires_at  timestamptz,
    ttl_seconds integer CHECK (ttl_seconds > 0),
    deployed_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- The rules live here, not only in code: a manual UPDATE in psql obeys them too.
    CONSTRAINT staging_slots_claimed_has_holder CHECK (
        status <> 'claimed' OR (task IS NOT NULL AND owner IS NOT NULL
                                AND claimed_at IS NOT NULL AND expires_at IS NOT NULL
                                AND ttl_seconds IS NOT NULL)),
    -- branch/commit/deployed_at describe what runs on the droplet, so they survive a release.
    CONSTRAINT staging_slots_free_has_none CHECK (
        status <> 'free' OR (task IS NULL AND owner IS NULL AND note IS NULL
                             AND claimed_at IS NULL AND expires_at IS NULL
                             AND ttl_seconds IS NULL))
);

-- One slot per task: a task holds at most one claimed slot.
CREATE UNIQUE INDEX staging_slots_one_slot_per_task
    ON marts.staging_slots (task) WHERE status = 'claimed';

CREATE TABLE marts.staging_slot_events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slot_id integer NOT NULL,
    action  text NOT NULL,
    actor   text NOT NULL,
    via     text NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    detail  text,
    before  jsonb,
    after   jsonb
);
CREATE INDEX staging_slot_events_by_slot ON marts.staging_slot_events (slot_id, id DESC);

-- updated_at is kept by the database so hand-made edits bump it too.
CREATE FUNCTION marts.staging_slots_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER staging_slots_touch BEFORE UPDATE ON marts.staging_slots
    FOR EACH ROW EXECUTE FUNCTION marts.staging_slots_touch();

-- Every change to a slot row is recorded in the same transaction, whoever makes it. staging-ops
-- names the actor, channel, action and reason with set_config('staging_ops.*', ..., true);
-- a hand-made edit falls back to the session user, 'sql' and an action derived from the change.
CREATE FUNCTION marts.staging_slots_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_action text := nullif(current_setting('staging_ops.action', true), '');
    v_before jsonb;
    v_after  jsonb;
    v_slot   integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_after := to_jsonb(NEW);
        v_slot := NEW.slot_id;
        v_action := coalesce(v_action, 'register');
    ELSIF TG_OP = 'DELETE' THEN
        v_before := to_jsonb(OLD);
        v_slot := OLD.slot_id;
        v_action := 'delete';
    ELSE
        v_before := to_jsonb(OLD);
        v_after := to_jsonb(NEW);
        v_slot := NEW.slot_id;
        IF (v_before - 'updated_at') = (v_after - 'updated_at') THEN
            RETURN NULL;  -- nothing changed: nothing to record
        END IF;
        IF v_action = 'claim' AND OLD.status = 'claimed' THEN
            v_action := 'renew';  -- the holding task claimed again
        ELSIF v_action IS NULL THEN
            v_action := CASE
                WHEN OLD.status = 'free' AND NEW.status = 'claimed' THEN 'claim'
                WHEN OLD.status = 'claimed' AND NEW.status = 'free' THEN 'release'
                ELSE 'update' END;
        END IF;
    END IF;
    INSERT INTO marts.staging_slot_events (slot_id, action, actor, via, detail, before, after)
    VALUES (v_slot, v_action,
            coalesce(nullif(current_setting('staging_ops.actor', true), ''), session_user),
            coalesce(nullif(current_setting('staging_ops.via', true), ''), 'sql'),
            nullif(current_setting('staging_ops.detail', true), ''),
            v_before, v_after);
    RETURN NULL;
END
$$;
CREATE TRIGGER staging_slots_record_event AFTER INSERT OR UPDATE OR DELETE
    ON marts.staging_slots FOR EACH ROW EXECUTE FUNCTION marts.staging_slots_record_event();

-- The history is append-only: corrections are new events, never edits.
CREATE FUNCTION marts.staging_slot_events_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'marts.staging_slot_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER staging_slot_events_append_only BEFORE UPDATE OR DELETE
    ON marts.staging_slot_events FOR EACH ROW EXECUTE FUNCTION marts.staging_slot_events_refuse();
CREATE TRIGGER staging_slot_events_no_truncate BEFORE TRUNCATE
    ON marts.staging_slot_events FOR EACH STATEMENT
    EXECUTE FUNCTION marts.staging_slot_events_refuse();
"""
