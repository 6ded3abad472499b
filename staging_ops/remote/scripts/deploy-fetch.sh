# deploy-fetch.sh BASE_DIR MIRROR MIRROR_LOCK REPO_URL REF NOT_FOUND [FILE...]
#
# Brings the droplet's shared bare MIRROR of REPO_URL up to date (cloned on first use, under
# BASE_DIR) and prints one JSON line: {"commit": REF's commit, "files": {FILE: {"size": SIZE,
# "base64": its first MiB}, or null when there is none}} for each FILE at the repository root
# of that commit (the Procfile, app.json); or exits NOT_FOUND if the branch is unknown. Deploys to
# several slots of one droplet share the mirror: MIRROR_LOCK, flocked on fd 8, keeps them from
# fetching into it at once.
#
# File descriptors (staging_ops/deploy/fds.py): 8 the mirror.
set -e
# "$1" as a JSON string: backslashes and double quotes escaped, control characters (none
# belongs in these values) dropped.
json_string() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037\177' | sed 's/[\\"]/\\&/g')"
}
base_dir=$1 mirror=$2 mirror_lock=$3 repo_url=$4 ref=$5 not_found=$6
shift 6
mkdir -p "$base_dir"
exec 8>"$mirror_lock"
flock 8
if [ ! -d "$mirror" ]; then
  git clone --quiet --mirror "$repo_url" "$mirror.tmp" && mv "$mirror.tmp" "$mirror"
else
  git --git-dir "$mirror" fetch --quiet --prune origin
fi
commit=$(git --git-dir "$mirror" rev-parse --verify --quiet "$ref") || exit "$not_found"
printf '{"commit": %s, "files": {' "$(json_string "$commit")"
sep=
for name in "$@"; do
  printf '%s%s: ' "$sep" "$(json_string "$name")"
  sep=', '
  if [ "$(git --git-dir "$mirror" cat-file -t "$commit:$name" 2>/dev/null)" = blob ]; then
    printf '{"size": %d, "base64": "' "$(git --git-dir "$mirror" cat-file -s "$commit:$name")"
    git --git-dir "$mirror" cat-file blob "$commit:$name" | head -c 1048576 | base64 -w 0
    printf '"}'
  else
    printf 'null'
  fi
done
echo '}}'
