"""`python -m staging_ops.web`: the Staging API and Dashboard under waitress, in the foreground.

The same app `invoke api.serve` runs, without Invoke, so the sandbox can start it as a plain
background process. Needs STAGING_REGISTRY_DSN and STAGING_API_JWT_SECRET; STAGING_INVENTORY
for the dashboard's health checks and links.
"""

from __future__ import annotations

import argparse
import sys

from staging_ops.errors import BadInput
from staging_ops.web import create_app
from staging_ops.web.server import DEFAULT_THREADS, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m staging_ops.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8700, help="port to listen on")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="worker threads")
    args = parser.parse_args(argv)
    try:
        app = create_app(pool_size=args.threads + 1)  # one connection per worker, one spare
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Staging Dashboard on http://{args.host}:{args.port}/staging", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
