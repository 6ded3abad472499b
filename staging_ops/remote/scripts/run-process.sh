# run-process.sh BASE_DIR SLOT:TYPE WHERE
#
# Runs one process of a slot, as every unit of the slot and the deploy's release phase do:
# TYPE's command from the process table of the release at BASE_DIR/SLOT/WHERE (`current`,
# `candidate` or `releases/NAME`): its own `.processes` (a Procfile's), else the host's
# BASE_DIR/bin/app.processes (the inventory's commands). Installed by provision-all as
# BASE_DIR/bin/run-process; run as the service user.
#
# The environment, in this order: the slot's shared/env, the release's .release-env, the
# candidate ports (WHERE = candidate), then shared/app.env (the inventory's [app.env], which
# may name ${RELEASE_DIR}); PORT is the type's port (web: UI_PORT, airflow: AIRFLOW_PORT),
# TMPDIR (and XDG_RUNTIME_DIR) a directory of this instance's own, HOME the slot's, PATH the
# release's venv first; a type with a port gets gunicorn's, uvicorn's and Flask's address
# variables set to 127.0.0.1:$PORT where the app's environment does not set them.
# A type the release does not declare exits 0 at once, saying so: its unit stays inactive.
base=$1 instance=$2 where=$3
slot=${instance%%:*}
type=${instance#*:}
case "$slot" in '' | *[!a-z0-9-]*) echo "run-process: bad slot in '$instance'" >&2; exit 2 ;; esac
case "$type" in '' | *[!a-z0-9_-]*) echo "run-process: bad type in '$instance'" >&2; exit 2 ;; esac
case "$where" in current | candidate | releases/[0-9]*) ;; *) echo "run-process: bad release '$where'" >&2; exit 2 ;; esac
dir=$base/$slot
release=$dir/$where
if [ ! -d "$release/" ]; then
    echo "run-process: $slot has no $where release: $type not started"
    exit 0
fi
cd "$release/" || exit 1
table=.processes
[ -f "$table" ] || table=$base/bin/app.processes
command=$(awk -F '\t' -v t="$type" '$1 == t { sub(/^[^\t]*\t/, ""); print; exit }' "$table")
# Not a process of the app's: the release phase's last part, Airflow 2's admin (below).
[ "$type" = airflow-admin ] && command=airflow-admin
if [ -z "$command" ]; then
    echo "run-process: $(basename "$(pwd -P)") declares no process '$type': not started"
    exit 0
fi
RELEASE_DIR=$release
set -a
# shellcheck source=/dev/null
. "$dir/shared/env"
# shellcheck source=/dev/null
[ -f ./.release-env ] && . ./.release-env
# shellcheck source=/dev/null
[ "$where" = candidate ] && . "$dir/shared/candidate.env"
# shellcheck source=/dev/null
[ -f "$dir/shared/app.env" ] && . "$dir/shared/app.env"
set +a
case "$type" in
    web) PORT=$UI_PORT ;;
    airflow) PORT=$AIRFLOW_PORT ;;
    *) unset PORT ;;
esac
# (A release phase runs from releases/NAME; one at a time under the deploy lock, so one dir.)
case "$where" in releases/*) instance_dir=release-$type ;; *) instance_dir=$where-$type ;; esac
TMPDIR=$dir/shared/tmp/$instance_dir
mkdir -p "$TMPDIR" || exit 1
HOME=$dir/shared/home
# gunicorn's control socket goes here (else ~/.gunicorn, one for every gunicorn of the slot).
XDG_RUNTIME_DIR=$TMPDIR
PATH=$release/.venv/bin:${PATH:-/usr/local/bin:/usr/bin:/bin}
export RELEASE_DIR TMPDIR HOME XDG_RUNTIME_DIR PATH
if [ -n "${PORT:-}" ]; then
    # A server told only its port binds every address (gunicorn's default once $PORT is set,
    # uvicorn's and Flask's with their own variables): point the usual ones at loopback, where
    # nginx reaches them, unless the app's environment says otherwise. A command that binds
    # elsewhere itself fails its deploy (deploy/loopback.py).
    : "${GUNICORN_CMD_ARGS=--bind=127.0.0.1:$PORT}" "${UVICORN_HOST=127.0.0.1}" "${UVICORN_PORT=$PORT}"
    : "${FLASK_RUN_HOST=127.0.0.1}" "${FLASK_RUN_PORT=$PORT}"
    export PORT GUNICORN_CMD_ARGS UVICORN_HOST UVICORN_PORT FLASK_RUN_HOST FLASK_RUN_PORT
fi
# Airflow 3's simple auth manager reads the slot's admin password from this file: 0600.
if [ -n "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}" ] && [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]; then
    passwords=$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE
    wanted="{\"${AIRFLOW_ADMIN_USER:-admin}\": \"$AIRFLOW_ADMIN_PASSWORD\"}"
    if [ "$(cat "$passwords" 2>/dev/null)" != "$wanted" ]; then
        (umask 077 && printf '%s' "$wanted" > "$passwords.$$" && mv -f "$passwords.$$" "$passwords")
    fi
fi
if [ "$type" = airflow-admin ]; then
    # Airflow 2's admin (FAB), once per password: a release without Airflow 2 has nothing to do.
    ls "$release"/.venv/lib/python3*/site-packages/apache_airflow-2.*.dist-info >/dev/null 2>&1 || exit 0
    mark=$AIRFLOW_HOME/.staging-ops-admin-$(printf '%s' "$AIRFLOW_ADMIN_PASSWORD" | sha256sum | cut -c1-16)
    [ -e "$mark" ] && exit 0
    airflow users create --username "${AIRFLOW_ADMIN_USER:-admin}" --password "$AIRFLOW_ADMIN_PASSWORD" \
        --role Admin --firstname Staging --lastname Admin --email "admin@$SLOT_SUBDOMAIN" >/dev/null 2>&1
    if airflow users reset-password --username "${AIRFLOW_ADMIN_USER:-admin}" \
        --password "$AIRFLOW_ADMIN_PASSWORD" >/dev/null 2>&1; then
        touch "$mark"
        echo "run-process: the slot's Airflow admin is ready"
        exit 0
    fi
    echo "run-process: the slot's Airflow admin could not be made (airflow users create)" >&2
    exit 1
fi
# The mark a failed deploy's log starts from (slot-journal.sh this-start): this run's lines only.
echo "run-process: starting $type of $(basename "$(pwd -P)")${PORT:+ on port $PORT}"
# The instance's main process (every exec below keeps this PID) and its start time, which
# slot-instances.sh measures from: without cgroups (the sandbox's systemctl) no other record says
# which processes are the unit's, and the start time tells a reused PID from ours.
case "$where" in
    current | candidate)
        # shellcheck disable=SC2086  # the fields after the command name, split on purpose
        read -r stat < /proc/$$/stat && set -- ${stat##*) } &&
            printf '%s %s\n' "$$" "${20}" > "$TMPDIR.pid.tmp" && mv -f "$TMPDIR.pid.tmp" "$TMPDIR.pid"
        ;;
esac
# A simple command replaces the shell (the unit's main process is the app's, as bash -c would
# make it); a compound one, or one that starts with a variable assignment, runs under it.
first=${command%% *}
case "$command" in
    *[';&|<>()`']*) exec /bin/sh -c "$command" ;;
esac
case "$first" in
    *=*) exec /bin/sh -c "$command" ;;
esac
exec /bin/sh -c "exec $command"
