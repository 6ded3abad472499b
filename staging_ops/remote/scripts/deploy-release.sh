# deploy-release.sh MIRROR COMMIT PARTIAL RELEASE VENVS RELEASE_ENV PYTHON SERVICE_USER CURRENT
#                   [REQUIREMENTS...]
#
# Exports COMMIT from MIRROR into PARTIAL with the slot's env (.env -> shared/env) and
# RELEASE_ENV (.release-env), links it to a venv in VENVS keyed by the sha of the REQUIREMENTS
# files (names relative to the release) and PYTHON's version (built under a flock on fd 7, or
# reused), gives it to SERVICE_USER and renames it to RELEASE when whole. Prints
# "built|reused <key>", then "live <CURRENT's target>" (saves the deploy a round trip).
#
# File descriptors (staging_ops/deploy/fds.py): 7 the venv being built.
set -e
mirror=$1 commit=$2 partial=$3 release=$4 venvs=$5 release_env=$6 python=$7 service_user=$8
current=$9
shift 9
# PYTHON is the inventory's interpreter command (it may carry words of its own), run as the
# shell would run it written out.
py() { eval "$python"' "$@"'; }
rm -rf "$partial"
mkdir -p "$partial" "$venvs"
git --git-dir "$mirror" archive "$commit" | tar -x -C "$partial"
ln -s ../../shared/env "$partial/.env"
printf '%s' "$release_env" > "$partial/.release-env"
reqs=""
for r in "$@"; do [ -f "$partial/$r" ] && reqs="$reqs $partial/$r"; done
# $reqs is split on purpose: the inventory's file names and our paths have no blanks.
# shellcheck disable=SC2086
key=$( (cat $reqs 2>/dev/null; py -V 2>&1) | sha256sum | cut -c1-16)
venv=$venvs/$key
exec 7>"$venv.lock"
flock 7
if [ -e "$venv/.complete" ]; then state=reused; else
  rm -rf "$venv"
  # shellcheck disable=SC2086
  if [ -n "$reqs" ] && grep -qvE '^[[:space:]]*(#|$)' $reqs; then
    py -m venv "$venv"
    for r in $reqs; do "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$r"; done
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
echo "$state $key"
echo "live $(readlink "$current" || true)"
