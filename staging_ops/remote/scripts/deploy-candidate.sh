# deploy-candidate.sh start|stop ROOT RELEASE UNIT...
#
# The slot's candidate units (ROOT is the slot's directory). Both verbs stop them first: a
# candidate a killed deploy left running is never kept, and a unit that failed is reset.
# start: point ROOT/candidate at releases/RELEASE (a new link renamed over the old one) and
# start every UNIT at once; exit 1 if one of them could not be started.
# stop: remove ROOT/candidate as well (RELEASE is ignored).
verb=$1 root=$2 release=$3
shift 3
systemctl stop "$@" 2>/dev/null
systemctl reset-failed "$@" 2>/dev/null
if [ "$verb" = stop ]; then
    rm -f "$root/candidate"
    exit 0
fi
ln -sfn "releases/$release" "$root/.candidate.tmp" && mv -T "$root/.candidate.tmp" "$root/candidate" || exit 1
rc=0
pids=""
for unit in "$@"; do systemctl start "$unit" & pids="$pids $!"; done
for pid in $pids; do wait "$pid" || rc=1; done
exit $rc
