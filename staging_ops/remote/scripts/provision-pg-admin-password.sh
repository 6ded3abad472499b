# provision-pg-admin-password.sh PORT ADMIN VERIFIER: give the PostgreSQL admin role ADMIN a
# password, as the `postgres` OS user through peer authentication (all a fresh Debian
# PostgreSQL allows). VERIFIER is a SCRAM verifier computed by provision-all (never the
# password); psql takes both values as variables, so neither is pasted into the SQL.
set -eu
cd /
runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$1" -v admin="$2" -v verifier="$3" <<'SQL'
ALTER ROLE :"admin" PASSWORD :'verifier';
SQL
