# slot-airflow-login.sh ENV_FILE
#
# The slot's Airflow admin, as provision-all wrote it into the slot's env file (root, 0600):
# two lines, `user NAME` and `password PASSWORD`. Exit 3 if the file has none (a slot
# provisioned before there was one).
user=$(sed -n 's/^AIRFLOW_ADMIN_USER=//p' "$1" 2>/dev/null)
password=$(sed -n 's/^AIRFLOW_ADMIN_PASSWORD=//p' "$1" 2>/dev/null)
[ -n "$user" ] && [ -n "$password" ] || exit 3
printf 'user %s\npassword %s\n' "$user" "$password"
