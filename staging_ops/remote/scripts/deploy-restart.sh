# deploy-restart.sh MARK OUTLOG VERB WAITED UNIT...
#
# Resets each UNIT's failed state (a unit that crash-looped has hit systemd's start limit, and
# a restart into a good release would be refused), then prints MARK and each UNIT's NRestarts
# (reset-failed zeroes it, a restart of a unit waiting to auto-restart keeps it: verify counts
# only the restarts after this line), then runs `systemctl VERB` on the UNITs, all at once,
# under setsid, detached from our session: a deploy killed now still leaves the units
# restarted. The first WAITED UNITs are waited for: their output goes to OUTLOG, printed
# after, and their exit code is ours. The others (the workers, judged later by their settle
# check) are not: their output goes to OUTLOG.more.
mark=$1 outlog=$2 verb=$3 waited=$4
shift 4
# `systemctl VERB` for every unit at once; exit 1 if any of them failed. A program of its own
# (setsid runs a program, not a function of this shell).
# shellcheck disable=SC2016  # expanded by the detached sh, not here
all_at_once='verb=$1; shift; rc=0; pids=""
for unit in "$@"; do systemctl "$verb" "$unit" & pids="$pids $!"; done
for pid in $pids; do wait "$pid" || rc=1; done
exit $rc'

systemctl reset-failed "$@" 2>/dev/null
# The counts are split on purpose: one line of them, after MARK.
# shellcheck disable=SC2046
echo "$mark" $(systemctl show -p NRestarts --value "$@" 2>/dev/null)
first="" n=0
for unit in "$@"; do
    n=$((n + 1))
    if [ "$n" -le "$waited" ]; then first="$first $unit"; fi
done
if [ "$#" -gt "$waited" ]; then
    shift "$waited"
    setsid sh -c "$all_at_once" deploy-restart.sh "$verb" "$@" > "$outlog.more" 2>&1 < /dev/null &
fi
# shellcheck disable=SC2086  # unit names have no blanks: split on purpose
setsid sh -c "$all_at_once" deploy-restart.sh "$verb" $first > "$outlog" 2>&1 < /dev/null & wait $!
rc=$?
cat "$outlog"
exit $rc
