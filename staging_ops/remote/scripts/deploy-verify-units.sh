# deploy-verify-units.sh UNIT...
#
# Each UNIT's state (is-active, a word), and each UNIT's NRestarts (digits), asked at the same
# time: the lines of the two may interleave, each in UNIT order. verify fails a unit that is
# down or restarted since our restart.
systemctl show -p NRestarts --value "$@" 2>/dev/null &
systemctl is-active "$@"
wait
