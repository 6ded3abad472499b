# provision-admin-secret.sh mkdir DIR | read FILE
#
# mkdir: DIR for the kept PostgreSQL admin password, root only (0700).
# read: FILE's content (the password provision-all keeps); nothing when there is no FILE.
case "$1" in
  mkdir) install -d -m 700 "$2" ;;
  read) [ ! -e "$2" ] || cat "$2" ;;
  *) echo "$0: unknown action ${1:-(none)}" >&2; exit 2 ;;
esac
