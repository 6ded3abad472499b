# status-live.sh CURRENT...
#
# For each slot's CURRENT link, one line: "<target>\t<commit>\t<branch>\t<verified 0|1>", the
# commit and branch as the release's .release-env records them (double quotes kept; the
# caller strips them), or "-" alone for a missing link. Shell and builtins apart from
# readlink: status runs this on every call, and a python3 start costs more than all of it.
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
  [ -e "$dir/.ok" ] && ok=1
  printf '%s\t%s\t%s\t%s\n' "$target" "$commit" "$branch" "$ok"
done
