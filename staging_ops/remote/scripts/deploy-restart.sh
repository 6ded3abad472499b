# deploy-restart.sh UNITS_SCRIPT MARK OUTLOG VERB UNIT...
#
# Resets each UNIT's failed state (a unit that crash-looped has hit systemd's start limit, and
# a restart into a good release would be refused), then prints MARK and each UNIT's NRestarts
# (reset-failed zeroes it, a restart of a unit waiting to auto-restart keeps it: verify counts
# only the restarts after this line), then runs UNITS_SCRIPT (the text of
# deploy-restart-units.sh) with VERB and the UNITs under setsid, detached from our session: a
# deploy killed now still leaves the units restarted. Its output goes to OUTLOG, printed after;
# its exit code is ours.
units_script=$1 mark=$2 outlog=$3 verb=$4
shift 4
systemctl reset-failed "$@" 2>/dev/null
# The counts are split on purpose: one line of them, after MARK.
# shellcheck disable=SC2046
echo "$mark" $(systemctl show -p NRestarts --value "$@" 2>/dev/null)
setsid sh -c "$units_script" deploy-restart-units.sh "$verb" "$@" > "$outlog" 2>&1 < /dev/null & wait $!
rc=$?
cat "$outlog"
exit $rc
