# deploy-candidate.sh start|stop ROOT RELEASE UNIT...
#
# The slot's candidate units (ROOT is the slot's directory). Both verbs stop them first when
# ROOT/candidate exists: a candidate a killed deploy left running is never kept, and a unit
# that failed is reset. The link is made before any unit starts and removed only after they
# stopped, so without it no candidate unit runs or is left failed.
# start: point ROOT/candidate at releases/RELEASE (a new link renamed over the old one) and
# start every UNIT at once; exit 1 if one of them could not be started.
# stop: remove ROOT/candidate as well (RELEASE is ignored).
verb=$1 root=$2 release=$3
shift 3
each() {
    action=$1
    shift
    pids=""
    for unit in "$@"; do systemctl "$action" "$unit" & pids="$pids $!"; done
    rc=0
    for pid in $pids; do wait "$pid" || rc=1; done
    return $rc
}
if [ -L "$root/candidate" ] || [ -e "$root/candidate" ]; then
    each stop "$@" 2>/dev/null
    systemctl reset-failed "$@" 2>/dev/null
fi
if [ "$verb" = stop ]; then
    rm -f "$root/candidate"
    exit 0
fi
ln -sfn "releases/$release" "$root/.candidate.tmp" && mv -T "$root/.candidate.tmp" "$root/candidate" || exit 1
each start "$@"
