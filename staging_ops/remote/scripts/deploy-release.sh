# deploy-release.sh MIRROR COMMIT PARTIAL RELEASE VENVS RELEASE_ENV PYTHON SERVICE_USER CURRENT
#                   SPEC PROCESSES FIND_LINKS INDEX_URL [REQUIREMENTS...]
#
# Exports COMMIT from MIRROR into PARTIAL with the slot's env (.env -> shared/env),
# RELEASE_ENV (.release-env), SPEC (.process-spec.json: what the release runs and how it is
# checked) and PROCESSES (.processes, the runner's table of a Procfile's commands; none when
# empty: the release runs the inventory's), links it to a venv in VENVS keyed by the sha of
# everything pip reads (the REQUIREMENTS files, names relative to the release, and every file
# they name with -r/-c, recursively) and PYTHON's version (built under a flock on fd 7, or
# reused), gives it to SERVICE_USER and renames it to RELEASE when whole. Its answer, after
# whatever pip said, is one JSON line: {"venv": "built|reused", "key": KEY, "live": CURRENT's
# target, "" for none} (the live release saves the deploy a round trip).
# FIND_LINKS and INDEX_URL (either may be empty) are where pip gets packages: find-links alone
# means offline (--no-index), for a droplet that reaches no index. They are pip's arguments for
# that pip call only, and not part of the key (the same files give the same packages).
#
# File descriptors (staging_ops/deploy/fds.py): 7 the venv being built.
set -e
# "$1" as a JSON string: backslashes and double quotes escaped, control characters dropped.
json_string() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037\177' | sed 's/[\\"]/\\&/g')"
}
mirror=$1 commit=$2 partial=$3 release=$4 venvs=$5 release_env=$6 python=$7 service_user=$8
current=$9 spec=${10} processes=${11} find_links=${12} index_url=${13}
shift 13
# PYTHON is the inventory's interpreter command (it may carry words of its own), run as the
# shell would run it written out.
py() { eval "$python"' "$@"'; }
# pip install with the inventory's package sources, each value one argument.
pip_install() {
  if [ -n "$index_url" ]; then set -- --index-url "$index_url" "$@"
  elif [ -n "$find_links" ]; then set -- --no-index "$@"; fi
  [ -z "$find_links" ] || set -- --find-links "$find_links" "$@"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}
rm -rf "$partial"
mkdir -p "$partial" "$venvs"
git --git-dir "$mirror" archive "$commit" | tar -x -C "$partial"
ln -s ../../shared/env "$partial/.env"
printf '%s' "$release_env" > "$partial/.release-env"
printf '%s\n' "$spec" > "$partial/.process-spec.json"
[ -z "$processes" ] || printf '%s' "$processes" > "$partial/.processes"
reqs=""
for r in "$@"; do [ -f "$partial/$r" ] && reqs="$reqs $partial/$r"; done
# Every file pip reads: -r/-c (and their long forms) name more, relative to the naming file.
read_too() {
  sed -n 's/^[[:space:]]*\(-[rc]\|--requirement\|--constraint\)[[:space:]=]*\([^[:space:]#]*\).*/\2/p' "$1" |
    while read -r name; do
      case "$name" in /*) echo "$name" ;; *) echo "$(dirname "$1")/$name" ;; esac
    done
}
pending=$reqs keyed=""
while [ -n "$pending" ]; do
  next=""
  # shellcheck disable=SC2086  # file names without blanks, split on purpose
  for f in $pending; do
    case " $keyed " in *" $f "*) continue ;; esac
    [ -f "$f" ] || continue
    keyed="$keyed $f"
    next="$next $(read_too "$f" | tr '\n' ' ')"
  done
  pending=$next
done
# $keyed is split on purpose: the inventory's file names and our paths have no blanks.
# shellcheck disable=SC2086
key=$( (for f in $keyed; do printf '%s\n' "${f#"$partial"/}"; cat "$f"; done; py -V 2>&1) | sha256sum | cut -c1-16)
venv=$venvs/$key
exec 7>"$venv.lock"
# The lines starting `progress: ` are what the deploy's progress shows while this runs.
flock -n 7 || { echo "progress: waiting for the venv $key another deploy builds"; flock 7; }
if [ -e "$venv/.complete" ]; then state=reused; else
  rm -rf "$venv"
  # shellcheck disable=SC2086
  if [ -n "$reqs" ] && grep -qvE '^[[:space:]]*(#|$)' $reqs; then
    echo "progress: building the venv $key (pip install)"
    py -m venv "$venv"
    for r in $reqs; do pip_install -r "$r"; done
  else
    py -m venv --without-pip "$venv"
  fi
  touch "$venv/.complete"
  state=built
fi
exec 7>&-
ln -s "$venv" "$partial/.venv"
chown -R "$service_user:" "$partial"
mv -T "$partial" "$release"
printf '{"venv": "%s", "key": "%s", "live": %s}\n' "$state" "$key" \
  "$(json_string "$(readlink "$current" || true)")"
