"""Local stand-ins for GitHub's REST API and Linear's GraphQL API, for tests and the demo:
each validates every request against the service's own published contract (vendored in
devtools/contracts/), answers as the service would, and records what it was sent."""

from devtools.standins.github import GitHubStandIn
from devtools.standins.linear import LinearStandIn

__all__ = ["GitHubStandIn", "LinearStandIn"]
