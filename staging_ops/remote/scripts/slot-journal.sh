# slot-journal.sh UNIT LINES [follow|this-start]: the last LINES lines of UNIT's log; with
# `follow`, then every new line until the session ends; with `this-start`, only the lines
# since bin/run-process last started the unit (its "run-process: starting" mark), so a failed
# deploy shows what this start said, not what an earlier run did.
if [ "${3:-}" = this-start ]; then
    journalctl -u "$1" -n 1000 --no-pager |
        awk '/run-process: starting / { n = 0 } { lines[n++] = $0 } END { for (i = 0; i < n; i++) print lines[i] }' |
        tail -n "$2"
    exit 0
fi
follow=""
[ "${3:-}" = follow ] && follow=-f
# shellcheck disable=SC2086  # $follow is empty or one word
exec journalctl -u "$1" -n "$2" --no-pager $follow
