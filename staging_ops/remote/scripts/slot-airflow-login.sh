# slot-airflow-login.sh ENV_FILE
#
# The slot's Airflow admin, as provision-all wrote it into the slot's env file (root, 0600):
# one JSON line, {"user": NAME, "password": PASSWORD}. Exit 3 if the file has none (a slot
# provisioned before there was one).
# "$1" as a JSON string: backslashes and double quotes escaped, control characters (none
# belongs in these values) dropped.
json_string() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037\177' | sed 's/[\\"]/\\&/g')"
}
user=$(sed -n 's/^AIRFLOW_ADMIN_USER=//p' "$1" 2>/dev/null)
password=$(sed -n 's/^AIRFLOW_ADMIN_PASSWORD=//p' "$1" 2>/dev/null)
[ -n "$user" ] && [ -n "$password" ] || exit 3
printf '{"user": %s, "password": %s}\n' "$(json_string "$user")" "$(json_string "$password")"
