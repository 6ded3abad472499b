# deploy-verify-units.sh UNIT...
#
# Each UNIT's ActiveState, SubState and NRestarts as one JSON line: an array, in UNIT order, of
# an object a unit with the properties systemctl showed ({"ActiveState": "active", ...}):
# verify fails a unit that is down, dead and waiting to be restarted (SubState auto-restart:
# systemd counts the restart only when RestartSec has passed), or restarted since our restart.
# `systemctl show` answers a block of KEY=VALUE lines a unit, blocks apart by an empty line.
systemctl show -p ActiveState -p SubState -p NRestarts "$@" | awk '
# A JSON string of s: backslashes and double quotes escaped, control characters dropped.
function json(s,   out, i, c) {
    out = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "\"") out = out "\\" c
        else if (c !~ /[[:cntrl:]]/) out = out c
    }
    return "\"" out "\""
}
BEGIN { RS = ""; FS = "\n"; printf "[" }
{
    printf "%s{", (NR > 1 ? ", " : "")
    shown = 0
    for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        if (!eq) continue
        printf "%s%s: %s", (shown++ ? ", " : ""), json(substr($i, 1, eq - 1)), json(substr($i, eq + 1))
    }
    printf "}"
}
END { print "]" }'
