"""provision-all: every host converged to a ready staging droplet.

facts.py (what a host is asked) -> desired.py (what it should have) -> plan.py (pure: the
changes, the file work, the handlers) -> apply.py (the scripts and the upload) ->
handlers.py (pure: what follows the services script); run.py runs the steps per host, in
parallel over hosts; databases.py the slots' roles and databases (scram.py their verifiers).
"""

from staging_ops.provision.report import HostReport, ProvisionReport
from staging_ops.provision.run import provision_all

__all__ = ["HostReport", "ProvisionReport", "provision_all"]
