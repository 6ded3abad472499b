# deploy-restart-units.sh VERB UNIT[=PORT]...
#
# `systemctl VERB` (restart, stop or start) for every UNIT at once; exit 1 if any of them
# failed. Run by deploy-restart.sh and deploy-candidate.sh.
#
# A UNIT given with the loopback PORT it serves is drained, then its exit cut short (restart
# and stop): systemd signals its processes as usual; once none of them listens on PORT any
# more and no connection on PORT is open (every request they took is answered), what is left
# is their interpreters' exit, which is killed instead of waited for: Airflow's webserver
# takes 3-9 s to exit after its last request, and a deploy stops one twice.
verb=$1
shift

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

one() {
    unit=${1%=*} port=${1##*=}
    [ "$unit" = "$1" ] && port=""
    old=""
    if [ -n "$port" ] && [ "$verb" != start ]; then
        main=$(systemctl show -p MainPID "$unit" 2>/dev/null)
        old=$(tree "${main#MainPID=}")
    fi
    systemctl "$verb" "$unit" &
    job=$!
    killed=""
    if [ -n "$old" ]; then
        while kill -0 "$job" 2>/dev/null; do
            if ! busy "$port"; then
                # shellcheck disable=SC2086  # PIDs, split on purpose
                kill -KILL $old 2>/dev/null
                killed=1
                break
            fi
            sleep 0.05
        done
    fi
    wait "$job" || return 1
    # systemd counts a main process killed by SIGKILL as a failure even while stopping: a
    # stopped unit is not left `failed` by our kill (a restarted one is active again anyway).
    if [ -n "$killed" ] && [ "$verb" = stop ]; then systemctl reset-failed "$unit" 2>/dev/null; fi
    return 0
}

rc=0
pids=""
for arg in "$@"; do one "$arg" & pids="$pids $!"; done
for pid in $pids; do wait "$pid" || rc=1; done
exit $rc
