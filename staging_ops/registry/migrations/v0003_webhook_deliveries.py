"""marts.staging_webhook_deliveries: the webhook deliveries already applied.

GitHub redelivers a delivery with the same `X-GitHub-Delivery`; a Linear body replayed within
its minute carries the same signed bytes. Each applied delivery leaves its keys here, so the
same delivery is answered again but never applied twice. The primary key makes concurrent
duplicates safe: the second `INSERT ... ON CONFLICT DO NOTHING` waits for the first one's
transaction and then inserts nothing. Rows are pruned after 30 days by the scheduled reap.
"""

SQL = r"""
CREATE TABLE marts.staging_webhook_deliveries (
    source      text NOT NULL CHECK (source IN ('github', 'linear')),
    delivery_id text NOT NULL CHECK (delivery_id <> '' AND length(delivery_id) <= 200),
    received_at timestamptz NOT NULL DEFAULT now(),
    outcome     text,
    PRIMARY KEY (source, delivery_id)
);
CREATE INDEX staging_webhook_deliveries_by_time
    ON marts.staging_webhook_deliveries (received_at);
"""
