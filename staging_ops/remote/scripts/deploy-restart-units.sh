# deploy-restart-units.sh VERB UNIT...
#
# `systemctl VERB` (restart or stop) for every UNIT at once; exit 1 if any of them failed.
# reset-failed first: a unit that crash-looped (a broken release) has hit systemd's start
# limit, and a restart into a good release would be refused.
verb=$1
shift
rc=0
systemctl reset-failed "$@" 2>/dev/null
pids=""
for unit in "$@"; do systemctl "$verb" "$unit" & pids="$pids $!"; done
for pid in $pids; do wait "$pid" || rc=1; done
exit $rc
