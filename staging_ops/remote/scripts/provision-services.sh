# provision-services.sh MARKER NGINX_TEST NGINX_RELOAD [ACTION...]: provision-all's handlers,
# run once as root after the upload (staging_ops/provision/plan.py builds the arguments).
#
#   enable N UNIT...    systemctl enable --now the N units (boot services)
#   daemon-reload       systemctl daemon-reload
#   restart N UNIT...   systemctl restart the N units (in one call: they restart together)
#   start N UNIT...     systemctl start the N units
#   nginx               NGINX_TEST (a command, e.g. "nginx -t"), then NGINX_RELOAD
#
# A failed systemd step does not stop the later ones. MARKER (the pending-handlers file) is
# removed last, only when everything succeeded, so a failed or killed run leaves its
# handlers to the next run; MARKER `-`: the caller removes it (slots are still to reload).
#
# Exit codes (named in staging_ops/provision/handlers.py, which decides what follows):
#   0   all done, marker removed
#   1   a systemd step or the reload failed; marker kept
#   90  NGINX_TEST refused the configuration (its output on stdout); systemd steps succeeded
#   91  NGINX_TEST refused the configuration, and a systemd step failed too
#   2   bad arguments
set -u

if [ "$#" -lt 3 ]; then
    echo "$0: usage: MARKER NGINX_TEST NGINX_RELOAD [ACTION...]" >&2
    exit 2
fi
marker=$1 nginx_test=$2 nginx_reload=$3
shift 3
rc=0

# systemctl_first N VERB ARG...: systemctl VERB with the first N ARGs (POSIX sh has no
# arrays: the positional parameters are rotated so that only those N stay); a boot service
# is enabled and started at once.
systemctl_first() {
    n=$1 verb=$2
    shift 2
    total=$# i=0
    while [ "$i" -lt "$total" ]; do
        if [ "$i" -lt "$n" ]; then
            set -- "$@" "$1"
        fi
        shift
        i=$((i + 1))
    done
    if [ "$verb" = enable ]; then
        systemctl enable --now --quiet "$@"
    else
        systemctl "$verb" "$@"
    fi
}

count() {
    case $1 in
    '' | *[!0-9]*)
        echo "$0: $2 needs a unit count, not '$1'" >&2
        exit 2
        ;;
    esac
    if [ "$3" -lt "$1" ]; then
        echo "$0: $2 names $1 unit(s), $3 given" >&2
        exit 2
    fi
}

while [ "$#" -gt 0 ]; do
    action=$1
    shift
    case $action in
    enable | restart | start)
        count "${1-}" "$action" "$(($# - 1))"
        n=$1
        shift
        systemctl_first "$n" "$action" "$@" || rc=1
        shift "$n"
        ;;
    daemon-reload)
        systemctl daemon-reload || rc=1
        ;;
    nginx)
        if ! out=$(sh -c "$nginx_test" 2>&1); then
            echo "$out"
            [ "$rc" -eq 0 ] && exit 90
            exit 91
        fi
        sh -c "$nginx_reload" || rc=1
        ;;
    *)
        echo "$0: unknown action: $action" >&2
        exit 2
        ;;
    esac
done

if [ "$rc" -eq 0 ] && [ "$marker" != - ]; then
    rm -f -- "$marker"
fi
exit "$rc"
