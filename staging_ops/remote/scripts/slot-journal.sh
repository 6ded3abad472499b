# slot-journal.sh UNIT LINES [follow]: the last LINES lines of UNIT's log; with `follow`, then
# every new line until the session ends.
follow=""
[ "${3:-}" = follow ] && follow=-f
# shellcheck disable=SC2086  # $follow is empty or one word
exec journalctl -u "$1" -n "$2" --no-pager $follow
