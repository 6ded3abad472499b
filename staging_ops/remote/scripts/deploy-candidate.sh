# deploy-candidate.sh start|stop ROOT RELEASE N UNIT...
#
# The slot's candidate units (ROOT is the slot's directory), each verb run on every UNIT at
# once. Both verbs stop them first when ROOT/candidate exists: a candidate a killed deploy left
# running is never kept, and a unit that failed is reset. The link is made before any unit starts and removed only after they
# stopped, so without it no candidate unit runs or is left failed.
# start: point ROOT/candidate at releases/RELEASE (a new link renamed over the old one) and
# start the first N UNITs (the release's process types with a port; the others are only
# stopped); exit 1 if one of them could not be started.
# stop: remove ROOT/candidate as well (RELEASE is ignored).
verb=$1 root=$2 release=$3 count=$4
shift 4

# `systemctl VERB` for every unit at once; fails if any of them failed (a subshell: its
# variables stay its own).
all_at_once() (
    _verb=$1
    shift
    _rc=0 _pids=""
    for _unit in "$@"; do systemctl "$_verb" "$_unit" & _pids="$_pids $!"; done
    for _pid in $_pids; do wait "$_pid" || _rc=1; done
    exit $_rc
)

if [ -L "$root/candidate" ] || [ -e "$root/candidate" ]; then
    all_at_once stop "$@" 2>/dev/null
    systemctl reset-failed "$@" 2>/dev/null
fi
if [ "$verb" = stop ]; then
    rm -f "$root/candidate"
    exit 0
fi
ln -sfn "releases/$release" "$root/.candidate.tmp" && mv -T "$root/.candidate.tmp" "$root/candidate" || exit 1
start=""
while [ "$count" -gt 0 ] && [ $# -gt 0 ]; do
    start="$start $1"
    shift
    count=$((count - 1))
done
# shellcheck disable=SC2086  # unit names have no blanks: split on purpose
all_at_once start $start
