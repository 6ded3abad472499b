# deploy-restart-units.sh VERB UNIT...
#
# `systemctl VERB` (restart, stop or start) for every UNIT at once; exit 1 if any of them
# failed. Run by deploy-restart.sh and deploy-candidate.sh.
verb=$1
shift
rc=0
pids=""
for unit in "$@"; do systemctl "$verb" "$unit" & pids="$pids $!"; done
for pid in $pids; do wait "$pid" || rc=1; done
exit $rc
