# deploy-verify-units.sh UNIT...
#
# Each UNIT's state (is-active), then each UNIT's NRestarts: verify fails a unit that is down
# or restarted since our restart.
systemctl is-active "$@"
systemctl show -p NRestarts --value "$@" 2>/dev/null
