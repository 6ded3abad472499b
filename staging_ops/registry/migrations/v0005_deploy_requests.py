"""marts.staging_deploy_requests: the queue of deploys and rollbacks the server runs itself
(web/deploy_worker.py), and marts.staging_claim_settings: a claim's auto_deploy.

A request is queued by the API or a GitHub push, taken by one worker (state running, its
lease renewed by the worker's heartbeat), and ends done or failed; a newer request for the
same slot supersedes a queued older one. A worker that dies leaves its lease to expire: the
next worker takes the request again (attempts counts the takes). The partial unique index is
the database's own guard of "one running request per slot", whatever the code decides.
"""

SQL = r"""
CREATE TABLE marts.staging_deploy_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slot_id       integer NOT NULL CHECK (slot_id > 0),
    kind          text NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    branch        text,
    commit        text CHECK (commit IS NULL OR commit ~ '^[0-9a-f]{40}$'),
    target        text,
    task          text CHECK (task IS NULL OR task ~ '^[A-Z][A-Z0-9]*-[0-9]+$'),
    requested_by  text NOT NULL CHECK (requested_by <> ''),
    via           text NOT NULL CHECK (via IN ('api', 'push')),
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'done', 'failed', 'superseded')),
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    worker        text,
    lease_until   timestamptz,
    heartbeat_at  timestamptz,
    requested_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    not_before    timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at    timestamptz,
    finished_at   timestamptz,
    step          text,
    steps         jsonb NOT NULL DEFAULT '[]'::jsonb,
    lines         jsonb NOT NULL DEFAULT '[]'::jsonb,
    result        jsonb,
    error         text,
    superseded_by bigint REFERENCES marts.staging_deploy_requests (id),
    CONSTRAINT staging_deploy_requests_deploy_has_branch
        CHECK (kind <> 'deploy' OR branch IS NOT NULL),
    CONSTRAINT staging_deploy_requests_running_has_lease
        CHECK (state <> 'running' OR (worker IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE UNIQUE INDEX staging_deploy_requests_one_running_per_slot
    ON marts.staging_deploy_requests (slot_id) WHERE state = 'running';
CREATE INDEX staging_deploy_requests_open
    ON marts.staging_deploy_requests (id) WHERE state IN ('queued', 'running');
CREATE INDEX staging_deploy_requests_by_slot
    ON marts.staging_deploy_requests (slot_id, id DESC);

-- A claim's own settings, kept apart from the slot row (whose columns are the claim's
-- identity): they belong to the claim made at claimed_at, and a new claim starts afresh.
CREATE TABLE marts.staging_claim_settings (
    slot_id     integer PRIMARY KEY REFERENCES marts.staging_slots (slot_id),
    claimed_at  timestamptz NOT NULL,
    auto_deploy boolean NOT NULL DEFAULT true
);
"""
