# deploy-migrate.sh RUNNER BASE_DIR SLOT WHERE SERVICE_USER
#
# The release phase: the `release` process of the release at BASE_DIR/SLOT/WHERE (its
# Procfile's, or the inventory's migrate_command), run once by RUNNER (bin/run-process, which
# provision-all installs) as SERVICE_USER, in a clean environment: the slot's own, as every
# process of the slot gets it (its AIRFLOW_HOME, HOME and temp dir, never /tmp's); then, for
# an Airflow 2 release, the slot's Airflow admin (once per password).
runner=$1 base=$2 slot=$3 where=$4 user=$5
if [ ! -f "$runner" ]; then
    echo "$runner is missing: run \`invoke provision-all\` first" >&2
    exit 1
fi
runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin \
  sh "$runner" "$base" "$slot:release" "$where" || exit
# How an operator signs in: Airflow 2's admin, made once the schema is there. A failure says
# so and fails nothing (the slot serves without it; the next deploy tries again).
runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin \
  sh "$runner" "$base" "$slot:airflow-admin" "$where" >&2 || true
