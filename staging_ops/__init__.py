"""staging-ops: the toolkit that runs the justapply.net staging droplet."""
