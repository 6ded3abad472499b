# slot-memory.sh SLOT_DIR...
#
# The droplet's memory and what each slot's processes use, for the deploy's memory admission
# and status, in one command, as one JSON line: {"available": <MemAvailable kB>, "slots":
# [...]}, an object per SLOT_DIR, in order, of its running instances' PSS in kB
# ({"candidate-web": 1234, "current-airflow": 402112, "current-web": 61234}; {}: none runs).
#
# An instance is a unit's process tree: the main PID bin/run-process records in
# SLOT_DIR/shared/tmp/<instance>.pid ("PID STARTTIME"; a PID that now belongs to another
# process, or to none, counts nothing) and every process below it; its PSS is the sum of
# their /proc/PID/smaps_rollup "Pss:" lines (PSS: shared pages divided among their users, so
# the slots' figures add up to what they take from the droplet). No cgroups needed (the
# sandbox's systemctl has none). One awk, every file read with getline (a process that ends
# meanwhile is a file that no longer opens, not an error): status runs this on every call.
count=$#
for dir do
    set -- "$@" @slot
    for file in "$dir"/shared/tmp/*.pid; do
        [ -f "$file" ] && set -- "$@" "$file"
    done
done
shift "$count"
exec awk '
function pss(pid,   file, line, f, kb) {
    file = "/proc/" pid "/smaps_rollup"
    kb = 0
    while ((getline line < file) > 0)
        if (line ~ /^Pss:/) { split(line, f, " "); kb = f[2]; break }
    close(file)
    return kb
}
BEGIN {
    while ((getline line < "/proc/meminfo") > 0)
        if (line ~ /^MemAvailable:/) { split(line, f, " "); available = f[2] }
    close("/proc/meminfo")
    printf "{\"available\": %d, \"slots\": [", available + 0
    slots = 0; proc = 0; roots = 0
    for (i = 1; i < ARGC; i++) {
        arg = ARGV[i]
        if (arg == "@slot") { slots++; continue }
        if (arg == "@proc") { proc = 1; continue }
        if ((getline line < arg) <= 0) { close(arg); continue }
        close(arg)
        if (!proc) {
            # A pid file: "PID STARTTIME", named <instance>.pid.
            split(line, f, " ")
            name = arg; sub(/.*\//, "", name); sub(/\.pid$/, "", name)
            # Skip a file bin/run-process did not write: its names are <where>-<type>, in a
            # type name characters (processes/model.py TYPE_NAME), which JSON takes as they are.
            if (name !~ /^[a-z][a-z0-9_-]*$/) continue
            roots++; rslot[roots] = slots; rname[roots] = name; rpid[roots] = f[1]; rstart[roots] = f[2]
            continue
        }
        # /proc/PID/stat: the command name may hold blanks and parentheses, the fields after
        # its last ") " never do: state, ppid, ..., starttime (the 20th).
        pid = line; sub(/ .*/, "", pid)
        sub(/^.*\) /, "", line); split(line, f, " ")
        started[pid] = f[20]; kids[f[2]] = kids[f[2]] " " pid
    }
    for (r = 1; r <= roots; r++) {
        if (!(rpid[r] in started) || started[rpid[r]] != rstart[r]) continue
        key = rslot[r] SUBSEP rname[r]
        if (!(key in used)) { order[rslot[r]] = order[rslot[r]] " " rname[r]; used[key] = 0 }
        todo = rpid[r]
        while (todo != "") {
            n = split(todo, queue, " "); todo = ""
            for (j = 1; j <= n; j++) {
                if (queue[j] in seen) continue
                seen[queue[j]] = 1
                used[key] += pss(queue[j])
                todo = todo " " kids[queue[j]]
            }
        }
    }
    for (s = 1; s <= slots; s++) {
        out = ""
        n = split(order[s], names, " ")
        for (j = 1; j <= n; j++) out = out (j > 1 ? ", " : "") "\"" names[j] "\": " used[s, names[j]]
        printf "%s{%s}", (s > 1 ? ", " : ""), out
    }
    print "]}"
    exit
}' "$@" @proc /proc/[0-9]*/stat
