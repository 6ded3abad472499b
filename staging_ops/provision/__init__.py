"""provision-all: every host converged to a ready staging droplet (run.py), with the slots'
databases (databases.py)."""

from staging_ops.provision.run import HostReport, ProvisionReport, provision_all

__all__ = ["HostReport", "ProvisionReport", "provision_all"]
