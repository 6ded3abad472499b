# slot-memory.sh SLOT_DIR...
#
# The droplet's memory and what each slot's processes use, for the deploy's memory admission
# and status, in one command. First line: "available <MemAvailable kB>". Then one line per
# SLOT_DIR, in order: its running instances as "<instance>=<PSS kB>" separated by blanks
# ("current-web=61234 current-airflow=402112 candidate-web=..."), or "-" when none runs.
#
# An instance is a unit's process tree: the main PID bin/run-process records in
# SLOT_DIR/shared/tmp/<instance>.pid ("PID STARTTIME"; a PID that now belongs to another
# process, or to none, counts nothing) and every process below it; its PSS is the sum of
# their /proc/PID/smaps_rollup "Pss:" lines (PSS: shared pages divided among their users, so
# the slots' figures add up to what they take from the droplet). No cgroups needed (the
# sandbox's systemctl has none). Shell, cat, awk and grep: status runs it on every call.
awk '$1 == "MemAvailable:" { print "available", $2 }' /proc/meminfo
# "PID PPID STARTTIME" of every process; the command name may hold blanks and parentheses,
# the fields after its last ") " never do.
table=$(cat /proc/[0-9]*/stat 2>/dev/null |
    awk '{ pid = $1; sub(/^.*\) /, ""); print pid, $2, $20 }')
index=0
roots=""
for dir in "$@"; do
    index=$((index + 1))
    for file in "$dir"/shared/tmp/*.pid; do
        [ -f "$file" ] || continue
        read -r pid start < "$file" || continue
        name=${file##*/}
        roots="$roots$index ${name%.pid} $pid $start
"
    done
done
# "PID SLOT-INDEX INSTANCE" for every process of every live root's tree.
members=$(printf '%s\n%s\n%s\n' "$roots" "--" "$table" | awk '
    $0 == "--" { table = 1; next }
    !table && NF == 4 { root[++n] = $0; next }
    table && NF == 3 { parent[$1] = $2; started[$1] = $3; kids[$2] = kids[$2] " " $1 }
    END {
        for (i = 1; i <= n; i++) {
            split(root[i], r, " ")
            if (!(r[3] in started) || started[r[3]] != r[4]) continue
            todo = r[3]
            while (todo != "") {
                split(todo, q, " "); todo = ""
                for (j in q) {
                    if (q[j] in seen) continue
                    seen[q[j]] = 1
                    print q[j], r[1], r[2]
                    todo = todo " " kids[q[j]]
                }
            }
        }
    }')
files=$(printf '%s\n' "$members" | awk 'NF == 3 { printf "/proc/%s/smaps_rollup ", $1 }')
# shellcheck disable=SC2086  # one argument per file: /proc paths have no blanks
pss=$( [ -n "$files" ] && grep -H '^Pss:' $files 2>/dev/null)
printf '%s\n%s\n%s\n' "$members" "--" "$pss" | awk -v slots="$#" '
    $0 == "--" { pss = 1; next }
    !pss && NF == 3 { of[$1] = $2 SUBSEP $3; next }
    pss {
        split($1, p, "/")
        if (!(p[3] in of)) next
        split(of[p[3]], key, SUBSEP)
        if (!((key[1], key[2]) in used)) order[key[1]] = order[key[1]] " " key[2]
        used[key[1], key[2]] += $2
    }
    END {
        for (i = 1; i <= slots; i++) {
            line = ""
            n = split(order[i], names, " ")
            for (j = 1; j <= n; j++) line = line (line == "" ? "" : " ") names[j] "=" used[i, names[j]]
            print (line == "" ? "-" : line)
        }
    }'
