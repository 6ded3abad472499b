"""What a deploy, rollback or release tells GitHub and Linear: a Deployment with its statuses
on the PR's commit, a link attachment and comments on the Linear task.

Layered below the CLI, the web app and the deploy (their call sites are one hook each:
`emit`, through deploy/announce.py for a deploy) and above the registry, whose outbox table
(registry/outbox.py) holds every event until it is delivered. A failing or unreachable
service never fails or delays the operation that emitted the event: the row is written, a
thread delivers it with short timeouts (the CLI waits for it at most EXIT_WAIT seconds at
exit), and the Staging API server's loop retries what failed with exponential backoff.

    events.py    the Event (pure) and its builders
    config.py    tokens and URLs from the environment; off without a token
    github.py    Deployments and statuses: the request bodies (pure) and their delivery
    linear.py    attachmentLinkURL and commentCreate: the documents (pure) and their delivery
    http.py      one JSON POST with short timeouts, failures as DeliveryError
    outbox.py    emit, deliver due rows, backoff (pure), the CLI's thread, the server's loop
    status.py    what `status` shows
"""

from staging_ops.integrations.events import Event
from staging_ops.integrations.outbox import emit, released, settle

__all__ = ["Event", "emit", "released", "settle"]
