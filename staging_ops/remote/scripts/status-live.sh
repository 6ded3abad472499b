# status-live.sh CURRENT...
#
# For each slot's CURRENT link, one line: "<target>\t<commit>\t<branch>\t<verified 0|1>", the
# commit and branch as the release's .release-env records them (double quotes kept; the
# caller strips them), or "-" alone for a missing link. Shell and builtins apart from
# readlink (and awk for a release older than .ok): status runs this on every call, and a python3 start costs more than all of it.
for link in "$@"; do
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
done
