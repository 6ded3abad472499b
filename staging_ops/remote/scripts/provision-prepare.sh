# provision-prepare.sh [ACTION ARG...]...: provision-all's prepare step, run
# as root before the upload (staging_ops/provision/plan.py builds the arguments).
#
#   useradd USER            the service user (system user, own group, no home, nologin)
#   mkdir MODE OWNER PATH   mkdir -p PATH, chmod MODE, chown OWNER: (OWNER's login group)
#   chmod MODE PATH
#   chown OWNER PATH        chown OWNER: PATH
#   certificate CRT KEY SUBJECT SAN
#                           a self-signed placeholder certificate (EC P-256, 90 days), the
#                           key 0600 (umask 077), the certificate 0644
#   ids USER                print USER's ids as one JSON line, {"uid": UID, "gid": GID}
#                           (the plan needs them for file owners)
#
# Every value is an argument: nothing is pasted into this text. Stops at the first failure.
set -eu

need() {
    if [ "$#" -lt "$1" ]; then
        echo "$0: $2 needs $(($1 - 1)) argument(s)" >&2
        exit 2
    fi
}

while [ "$#" -gt 0 ]; do
    case $1 in
    useradd)
        need 2 "$@"
        id -u "$2" >/dev/null 2>&1 ||
            useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$2"
        shift 2
        ;;
    mkdir)
        need 4 "$@"
        mkdir -p -- "$4"
        chmod "$2" -- "$4"
        chown "$3:" -- "$4"
        shift 4
        ;;
    chmod)
        need 3 "$@"
        chmod "$2" -- "$3"
        shift 3
        ;;
    chown)
        need 3 "$@"
        chown "$2:" -- "$3"
        shift 3
        ;;
    certificate)
        need 5 "$@"
        mkdir -p -- "$(dirname -- "$2")" "$(dirname -- "$3")"
        if ! out=$(umask 077 && openssl req -x509 -newkey ec \
            -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
            -subj "$4" -addext "$5" -keyout "$3" -out "$2" 2>&1); then
            echo "$out" >&2
            exit 1
        fi
        chmod 644 -- "$2"
        shift 5
        ;;
    ids)
        need 2 "$@"
        printf '{"uid": %s, "gid": %s}\n' "$(id -u -- "$2")" "$(id -g -- "$2")"
        shift 2
        ;;
    *)
        echo "$0: unknown action: $1" >&2
        exit 2
        ;;
    esac
done
