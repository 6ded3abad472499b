# deploy-fetch.sh BASE_DIR MIRROR MIRROR_LOCK REPO_URL REF NOT_FOUND
#
# Brings the droplet's shared bare MIRROR of REPO_URL up to date (cloned on first use, under
# BASE_DIR) and prints REF's commit, or exits NOT_FOUND if the branch is unknown. Deploys to
# several slots of one droplet share the mirror: MIRROR_LOCK, flocked on fd 8, keeps them from
# fetching into it at once.
#
# File descriptors (staging_ops/deploy/fds.py): 8 the mirror.
set -e
base_dir=$1 mirror=$2 mirror_lock=$3 repo_url=$4 ref=$5 not_found=$6
mkdir -p "$base_dir"
exec 8>"$mirror_lock"
flock 8
if [ ! -d "$mirror" ]; then
  git clone --quiet --mirror "$repo_url" "$mirror.tmp" && mv "$mirror.tmp" "$mirror"
else
  git --git-dir "$mirror" fetch --quiet --prune origin
fi
git --git-dir "$mirror" rev-parse --verify --quiet "$ref" || exit "$not_found"
