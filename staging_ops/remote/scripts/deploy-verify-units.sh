# deploy-verify-units.sh UNIT...
#
# Each UNIT's ActiveState, SubState and NRestarts, one block of KEY=VALUE lines a unit, in
# UNIT order, blocks apart by an empty line: verify fails a unit that is down, dead and
# waiting to be restarted (SubState auto-restart: systemd counts the restart only when
# RestartSec has passed), or restarted since our restart.
systemctl show -p ActiveState -p SubState -p NRestarts "$@"
