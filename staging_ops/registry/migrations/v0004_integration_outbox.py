"""marts.staging_outbox: what GitHub and Linear are to be told, and
marts.staging_github_deployments: the Deployment made for each slot and commit.

A deploy, rollback or release writes its event here and goes on; a deliverer (a thread of the
CLI that wrote it, the Staging API server's loop) leases due rows with FOR UPDATE SKIP LOCKED,
so two deliverers never send the same row at once, and a failed attempt is retried later
(`next_attempt_at`, exponential backoff) until it is given up (`failed_at`). Rows are kept a
while for `status`'s counts, then pruned.
"""

SQL = r"""
CREATE TABLE marts.staging_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target          text NOT NULL CHECK (target IN ('github', 'linear')),
    slot_id         integer NOT NULL,
    kind            text NOT NULL,
    event           jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,
    delivered_at    timestamptz,
    failed_at       timestamptz,
    last_error      text
);
CREATE INDEX staging_outbox_open ON marts.staging_outbox (target, slot_id, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE TABLE marts.staging_github_deployments (
    repository    text NOT NULL,
    slot_id       integer NOT NULL,
    commit        text NOT NULL,
    deployment_id bigint NOT NULL,
    state         text NOT NULL DEFAULT 'in_progress',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository, slot_id, commit)
);
"""
