"""`python -m staging_ops.web`: the Staging API and Dashboard under granian, in the foreground.

The same server `invoke api.serve` runs, without Invoke, so the sandbox can start it as a plain
background process. Needs STAGING_REGISTRY_DSN and STAGING_API_JWT_SECRET; STAGING_INVENTORY
for the dashboard's health checks and links.
"""

from __future__ import annotations

import argparse
import sys

from staging_ops.errors import BadInput, StagingError
from staging_ops.web.server import ServeOptions, serve_staging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m staging_ops.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8700, help="port to listen on")
    parser.add_argument(
        "--workers", type=int, default=0, help="worker processes (default: one per core, >= 2)"
    )
    args = parser.parse_args(argv)
    try:
        options = ServeOptions(args.host, args.port, args.workers)
        print(f"Staging Dashboard on http://{args.host}:{args.port}/staging", flush=True)
        serve_staging(options)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
