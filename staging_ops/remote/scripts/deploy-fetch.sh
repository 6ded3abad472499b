# deploy-fetch.sh BASE_DIR MIRROR MIRROR_LOCK REPO_URL REF NOT_FOUND [FILE...]
#
# Brings the droplet's shared bare MIRROR of REPO_URL up to date (cloned on first use, under
# BASE_DIR) and prints REF's commit, or exits NOT_FOUND if the branch is unknown; then, for
# each FILE at the repository root of that commit (the Procfile, app.json), a line
# `file NAME SIZE` and its base64 on the next line, or `none NAME`. Deploys to
# several slots of one droplet share the mirror: MIRROR_LOCK, flocked on fd 8, keeps them from
# fetching into it at once.
#
# File descriptors (staging_ops/deploy/fds.py): 8 the mirror.
set -e
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
echo "$commit"
for name in "$@"; do
  if [ "$(git --git-dir "$mirror" cat-file -t "$commit:$name" 2>/dev/null)" = blob ]; then
    echo "file $name $(git --git-dir "$mirror" cat-file -s "$commit:$name")"
    git --git-dir "$mirror" cat-file blob "$commit:$name" | head -c 1048576 | base64 -w 0
    echo
  else
    echo "none $name"
  fi
done
