# status-live.sh TABLE LINK UNITS [LINK UNITS]...
#
# For each slot's CURRENT link, one line: "<target>\t<commit>\t<branch>\t<verified 0|1>", the
# commit and branch as the release's .release-env records them (double quotes kept; the
# caller strips them), or "-" alone for a missing link. For a linked slot, then:
# "spec\t<the release's .process-spec.json, on one line>" and "unit\t<type>\t<unit>" for each
# process type the release runs: the runner's table (the release's .processes, a Procfile's,
# else TABLE, the host's bin/app.processes), `release` aside. UNITS names the slot's units:
# "TYPE=UNIT ... *=WORKER_PREFIX" (a type without a unit of its own: WORKER_PREFIX<type>.service).
# Last, a line "systemctl" and one `systemctl show` of every unit listed (ActiveState,
# SubState, NRestarts; a block a unit, in order). Shell and builtins apart from readlink, tr
# and systemctl (and awk for a release older than .ok): status runs this on every call, and a
# python3 start costs more than all of it.
set -f # unit names are split on blanks below, never globbed
tab=$(printf '\t')
host_table=$1
shift
units=""
while [ $# -ge 2 ]; do
  link=$1 map=$2
  shift 2
  if ! target=$(readlink "$link"); then echo "-"; continue; fi
  dir=${link%/*}/$target commit="" branch="" ok=0
  if [ -r "$dir/.release-env" ]; then
    while IFS='=' read -r key value; do
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
  printf '%s\t%s\t%s\t%s\n' "$target" "$commit" "$branch" "$ok"
  spec=""
  # JSON needs no line break outside its strings and allows none inside: one line, unchanged.
  [ -r "$dir/.process-spec.json" ] && spec=$(tr -d '\r\n' < "$dir/.process-spec.json")
  printf 'spec\t%s\n' "$spec"
  table=$dir/.processes
  [ -f "$table" ] || table=$host_table
  [ -r "$table" ] || continue
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
    printf 'unit\t%s\t%s\n' "$type" "$unit"
    units="$units $unit"
  done < "$table"
done
echo systemctl
# shellcheck disable=SC2086 # the unit names, one word each
if [ -n "$units" ]; then systemctl show -p ActiveState -p SubState -p NRestarts $units || true; fi
