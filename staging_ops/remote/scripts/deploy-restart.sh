# deploy-restart.sh UNITS_SCRIPT MARK OUTLOG VERB WAITED UNIT[=PORT]...
#
# Resets each UNIT's failed state (a unit that crash-looped has hit systemd's start limit, and
# a restart into a good release would be refused), then prints MARK and each UNIT's NRestarts
# (reset-failed zeroes it, a restart of a unit waiting to auto-restart keeps it: verify counts
# only the restarts after this line), then runs UNITS_SCRIPT (the text of
# deploy-restart-units.sh) with VERB and the UNITs under setsid, detached from our session: a
# deploy killed now still leaves the units restarted. The first WAITED UNITs are waited for:
# their output goes to OUTLOG, printed after, and their exit code is ours. The others (the
# workers, judged later by their settle check) are not: their output goes to OUTLOG.more.
units_script=$1 mark=$2 outlog=$3 verb=$4 waited=$5
shift 5
# A UNIT may come as UNIT=PORT (deploy-restart-units.sh drains it): systemctl gets the names.
names=""
for arg in "$@"; do names="$names ${arg%=*}"; done
# Unit names have no blanks: split on purpose, here and for the counts (one line of them,
# after MARK).
# shellcheck disable=SC2086
systemctl reset-failed $names 2>/dev/null
# shellcheck disable=SC2046,SC2086
echo "$mark" $(systemctl show -p NRestarts --value $names 2>/dev/null)
first="" n=0
for unit in "$@"; do
    n=$((n + 1))
    if [ "$n" -le "$waited" ]; then first="$first $unit"; fi
done
if [ "$#" -gt "$waited" ]; then
    shift "$waited"
    setsid sh -c "$units_script" deploy-restart-units.sh "$verb" "$@" > "$outlog.more" 2>&1 < /dev/null &
fi
# shellcheck disable=SC2086  # unit names have no blanks: split on purpose
setsid sh -c "$units_script" deploy-restart-units.sh "$verb" $first > "$outlog" 2>&1 < /dev/null & wait $!
rc=$?
cat "$outlog"
exit $rc
