# deploy-candidate.sh UNITS_SCRIPT start|stop ROOT RELEASE N UNIT[=PORT]...
#
# The slot's candidate units (ROOT is the slot's directory), each verb run on every UNIT at
# once by UNITS_SCRIPT (the text of deploy-restart-units.sh). Both verbs stop them first when
# ROOT/candidate exists: a candidate a killed deploy left running is never kept, and a unit
# that failed is reset. The link is made before any unit starts and removed only after they
# stopped, so without it no candidate unit runs or is left failed.
# start: point ROOT/candidate at releases/RELEASE (a new link renamed over the old one) and
# start the first N UNITs (the release's process types with a port; the others are only
# stopped); exit 1 if one of them could not be started.
# stop: remove ROOT/candidate as well (RELEASE is ignored). A UNIT=PORT is drained as it
# stops (deploy-restart-units.sh).
units_script=$1 verb=$2 root=$3 release=$4 count=$5
shift 5
if [ -L "$root/candidate" ] || [ -e "$root/candidate" ]; then
    sh -c "$units_script" deploy-restart-units.sh stop "$@" 2>/dev/null
    names=""
    for arg in "$@"; do names="$names ${arg%=*}"; done
    # shellcheck disable=SC2086  # unit names have no blanks: split on purpose
    systemctl reset-failed $names 2>/dev/null
fi
if [ "$verb" = stop ]; then
    rm -f "$root/candidate"
    exit 0
fi
ln -sfn "releases/$release" "$root/.candidate.tmp" && mv -T "$root/.candidate.tmp" "$root/candidate" || exit 1
start=""
while [ "$count" -gt 0 ] && [ $# -gt 0 ]; do
    start="$start ${1%=*}"
    shift
    count=$((count - 1))
done
# shellcheck disable=SC2086  # unit names have no blanks: split on purpose
exec sh -c "$units_script" deploy-restart-units.sh start $start
