# deploy-restart.sh OUTLOG VERB WAITED UNIT[=PORT]...
#
# Resets each UNIT's failed state (a unit that crash-looped has hit systemd's start limit, and
# a restart into a good release would be refused), then prints each UNIT's NRestarts as one
# JSON line, `{"restarts_before": [0, 3, 0]}` in the UNITs' order (reset-failed zeroes it, a
# restart of a unit waiting to auto-restart keeps it: verify counts only the restarts after
# this line), then runs `systemctl VERB` on the UNITs, all at once,
# under setsid, detached from our session: a deploy killed now still leaves the units
# restarted. The first WAITED UNITs are waited for: their output goes to OUTLOG, printed
# after, and their exit code is ours. The others (the workers, judged later by their settle
# check) are not: their output goes to OUTLOG.more, and the droplet's clock once their
# restart is done (the old processes gone, the new ones started: what their heartbeats must
# be newer than) to OUTLOG.more.done.
#
# A UNIT given with the loopback PORT it serves is drained, then its exit cut short: systemd
# signals its processes as usual; once none of them listens on PORT any more and no connection
# on PORT is open (every request they took is answered), what is left is their interpreters'
# exit, which is killed instead of waited for (Airflow's webserver takes 3-9 s to exit after
# its last request, and a deploy stops one twice). Only a shortcut: a deploy killed meanwhile
# leaves systemd's own stop to finish the usual way.
outlog=$1 verb=$2 waited=$3
shift 3
# `systemctl VERB` for every unit at once; exit 1 if any of them failed. A program of its own
# (setsid runs a program, not a function of this shell).
# shellcheck disable=SC2016  # expanded by the detached sh, not here
all_at_once='verb=$1; shift; rc=0; pids=""
for unit in "$@"; do systemctl "$verb" "$unit" & pids="$pids $!"; done
for pid in $pids; do wait "$pid" || rc=1; done
[ -z "$DONE" ] || date -u +%s.%N > "$DONE"
exit $rc'

# PID and every process below it, one a line (from /proc: no procps needed).
tree() {
    [ "${1:-0}" -gt 0 ] 2>/dev/null || return 0
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
        { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " "); parent[pid] = f[2] }
        END {
            want[root] = 1
            for (more = 1; more; ) {
                more = 0
                for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; more = 1 }
            }
            for (p in want) if (p in parent) print p
        }'
}

# Whether something listens on PORT or holds a connection on it (as its local port).
busy() {
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p="$(printf ':%04X' "$1")" '
        substr($2, length($2) - 4) == p && ($4 == "0A" || $4 == "01") { found = 1 }
        END { exit !found }'
}

# drain JOB UNIT PORT PIDS: while JOB (the systemctl calls) runs, wait for PORT to be free of
# UNIT's old processes, then kill what is left of them (PIDS, comma-separated).
drain() {
    while kill -0 "$1" 2>/dev/null; do
        if ! busy "$3"; then
            # shellcheck disable=SC2046  # PIDs, split on purpose
            kill -KILL $(echo "$4" | tr ',' ' ') 2>/dev/null
            # systemd counts a main process killed by SIGKILL as a failure even while
            # stopping: a stopped unit is not left `failed` by our kill.
            if [ "$verb" = stop ]; then
                while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
                systemctl reset-failed "$2" 2>/dev/null
            fi
            return 0
        fi
        sleep 0.05
    done
}

names="" first="" n=0 drains=""
for arg in "$@"; do
    unit=${arg%=*}
    names="$names $unit"
    n=$((n + 1))
    if [ "$n" -le "$waited" ]; then first="$first $unit"; fi
    if [ "$unit" != "$arg" ] && [ "$verb" != start ]; then
        main=$(systemctl show -p MainPID "$unit" 2>/dev/null)
        old=$(tree "${main#MainPID=}" | tr '\n' ',')
        [ -n "$old" ] && drains="$drains $unit=${arg##*=}=$old"
    fi
done
# Unit names have no blanks: split on purpose, here and for the counts (a count systemd does
# not give as digits is 0, in its place).
# shellcheck disable=SC2086
systemctl reset-failed $names 2>/dev/null
# shellcheck disable=SC2086
counts=$(systemctl show -p NRestarts --value $names 2>/dev/null | awk '
    { for (i = 1; i <= NF; i++) { printf "%s%s", sep, ($i ~ /^[0-9]+$/ ? $i : 0); sep = ", " } }')
echo "{\"restarts_before\": [$counts]}"
if [ "$#" -gt "$waited" ]; then
    # shellcheck disable=SC2086
    set -- $names
    shift "$waited"
    rm -f "$outlog.more.done"
    DONE=$outlog.more.done setsid sh -c "$all_at_once" deploy-restart.sh "$verb" "$@" \
        > "$outlog.more" 2>&1 < /dev/null &
fi
# shellcheck disable=SC2086  # unit names have no blanks: split on purpose
setsid sh -c "$all_at_once" deploy-restart.sh "$verb" $first > "$outlog" 2>&1 < /dev/null &
job=$!
drainers=""
for d in $drains; do
    # UNIT=PORT=PID,PID,...
    unit=${d%%=*} rest=${d#*=}
    drain "$job" "$unit" "${rest%%=*}" "${rest#*=}" &
    drainers="$drainers $!"
done
wait $job
rc=$?
# The drains only, by PID: a bare `wait` would also wait for the workers' restart above.
for d in $drainers; do wait "$d"; done
cat "$outlog"
exit $rc
