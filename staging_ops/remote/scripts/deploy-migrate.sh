# deploy-migrate.sh RELEASE_DIR SERVICE_USER COMMAND
#
# Runs COMMAND (the inventory's migrate_command, a shell command line with the release's paths
# filled in) in RELEASE_DIR as SERVICE_USER, in a clean environment that holds only the
# release's .env and .release-env. COMMAND reaches the inner shell as its $1, not as text.
cd "$1" || exit 1
# shellcheck disable=SC2016  # $1 is the inner shell's: COMMAND, expanded there
exec runuser -u "$2" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp \
  sh -c 'set -a; . ./.env; . ./.release-env; set +a; eval "exec $1"' deploy-migrate "$3"
