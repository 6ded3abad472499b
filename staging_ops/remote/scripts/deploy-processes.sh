# deploy-processes.sh SYSTEMD_DIR WORKER_PREFIX N KEEP_UNIT... STOP_UNIT...
#
# The slot's processes follow its live release: its worker units enabled at boot become
# exactly the N KEEP_UNITs (WORKER_PREFIX is `<app>-worker@<slot>:`): one enabled but not kept
# (a process type the release no longer declares) is stopped and disabled, a kept one not yet
# enabled is enabled. Then every STOP_UNIT (the slot's own units of types the release does not
# declare) is stopped. Exit 1 if a systemctl call failed.
systemd_dir=$1 prefix=$2 count=$3
shift 3
keep=" "
while [ "$count" -gt 0 ]; do
    keep="$keep$1 "
    shift
    count=$((count - 1))
done
rc=0
for link in "$systemd_dir/multi-user.target.wants/$prefix"*.service; do
    [ -L "$link" ] || continue
    unit=${link##*/}
    case "$keep" in *" $unit "*) continue ;; esac
    systemctl stop "$unit" || rc=1
    systemctl disable "$unit" >/dev/null 2>&1 || rc=1
done
for unit in $keep; do
    [ -L "$systemd_dir/multi-user.target.wants/$unit" ] && continue
    systemctl enable "$unit" >/dev/null 2>&1 || rc=1
done
if [ $# -gt 0 ]; then systemctl stop "$@" || rc=1; fi
exit $rc
