# status-live.sh TABLE LINK UNITS [LINK UNITS]...
#
# One JSON line: {"slots": [...], "units": [...]}. "slots" has, for each slot's CURRENT link in
# order, null for a missing link, else {"target", "commit", "branch", "verified" (0|1),
# "spec" (the release's .process-spec.json as text, "" without one), "units" ([type, unit] for
# each process type the release runs: the runner's table (the release's .processes, a
# Procfile's, else TABLE, the host's bin/app.processes), `release` aside)}. The commit and
# branch are the release's .release-env values without their double quotes. UNITS names the
# slot's units: "TYPE=UNIT ... *=WORKER_PREFIX" (a type without a unit of its own:
# WORKER_PREFIX<type>.service). "units" is `systemctl show` of every unit listed, in order
# (ActiveState, SubState, NRestarts as strings). Shell and builtins apart from readlink, tr,
# sed (a value that needs escaping), awk and systemctl: status runs this on every call, and a
# python3 start costs more than all of it.
set -f # unit names are split on blanks below, never globbed
tab=$(printf '\t')
host_table=$1
shift

# A JSON string of $1: as it is when it holds nothing to escape (no fork), else escaped;
# control characters dropped (no value of ours has one).
json_string() {
  case $1 in
    *[!A-Za-z0-9._/:@+=-]*) printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037\177' | sed 's/[\\"]/\\&/g')" ;;
    *) printf '"%s"' "$1" ;;
  esac
}

units="" sep=""
printf '{"slots": ['
while [ $# -ge 2 ]; do
  link=$1 map=$2
  shift 2
  if ! target=$(readlink "$link"); then printf '%snull' "$sep"; sep=", "; continue; fi
  dir=${link%/*}/$target commit="" branch="" ok=0
  if [ -r "$dir/.release-env" ]; then
    while IFS='=' read -r key value; do
      value=${value#\"} && value=${value%\"}
      case $key in
        DEPLOYED_COMMIT) commit=$value ;;
        DEPLOYED_BRANCH) branch=$value ;;
      esac
    done < "$dir/.release-env"
  fi
  # Verified as deploy-releases.sh judges it: its .ok, or (a release older than .ok) a line
  # for it in the slot's deploy log, which only a verified deploy or rollback wrote.
  if [ -e "$dir/.ok" ]; then
    ok=1
  elif [ -r "${link%/*}/deploys.log" ] &&
    awk -v r="${target##*/}" '$NF == r { f = 1 } END { exit !f }' "${link%/*}/deploys.log"; then
    ok=1
  fi
  spec=""
  [ -r "$dir/.process-spec.json" ] && spec=$(tr -d '\r\n' < "$dir/.process-spec.json")
  printf '%s{"target": %s, "commit": %s, "branch": %s, "verified": %s, "spec": %s, "units": [' \
    "$sep" "$(json_string "$target")" "$(json_string "$commit")" "$(json_string "$branch")" \
    "$ok" "$(json_string "$spec")"
  sep=", "
  table=$dir/.processes
  [ -f "$table" ] || table=$host_table
  listed=""
  if [ -r "$table" ]; then
    while IFS=$tab read -r type _; do
      # Comments, the release phase, and a name no unit could carry (a hand-edited table).
      case $type in '' | '#'* | release | *[!a-z0-9_-]*) continue ;; esac
      unit="" prefix=""
      for pair in $map; do
        case $pair in
          "$type="*) unit=${pair#*=} ;;
          '*='*) prefix=${pair#*=} ;;
        esac
      done
      [ -n "$unit" ] || unit=$prefix$type.service
      printf '%s["%s", %s]' "$listed" "$type" "$(json_string "$unit")"
      listed=", "
      units="$units $unit"
    done < "$table"
  fi
  printf ']}'
done
printf '], "units": ['
# shellcheck disable=SC2086 # the unit names, one word each
if [ -n "$units" ]; then
  # A block of KEY=VALUE lines a unit, blank-line apart, in the units' order.
  systemctl show -p ActiveState -p SubState -p NRestarts $units 2>/dev/null | awk '
    BEGIN { RS = ""; FS = "\n" }
    {
      printf "%s{", (NR > 1 ? ", " : "")
      for (i = 1; i <= NF; i++) {
        key = $i; sub(/=.*/, "", key); value = substr($i, length(key) + 2)
        gsub(/[^A-Za-z0-9._-]/, "", key); gsub(/[\\"]/, "", value)
        printf "%s\"%s\": \"%s\"", (i > 1 ? ", " : ""), key, value
      }
      printf "}"
    }'
fi
echo ']}'
