# slot-instances.sh memory SLOT_DIR... | listening SLOT_DIR...
#
# What each slot's running instances use or listen on, in one command, as one JSON line; an
# object per SLOT_DIR, in order, of its running instances (bin/run-process's names,
# <where>-<type>: current-web, candidate-airflow, current-scheduler ...; {}: none runs):
# memory:    the droplet's memory and each instance's PSS in kB, for the deploy's memory
#            admission and status: {"available": <MemAvailable kB>, "slots": [{"candidate-web":
#            1234, "current-airflow": 402112, "current-web": 61234}, ...]}. PSS: shared pages
#            divided among their users, so the slots' figures add up to what they take from the
#            droplet; an instance's is the sum of its processes' /proc/PID/smaps_rollup "Pss:".
# listening: the local addresses of the listening TCP sockets each instance's processes hold,
#            as the kernel writes them in /proc/net/tcp and tcp6 (hex, "0100007F:1F41":
#            remote/listeners.py reads them): {"slots": [{"current-web": ["0100007F:1F41"],
#            "current-scheduler": []}, ...]}. Run as root (a process's fds are its owner's).
#
# An instance is a unit's process tree: the main PID bin/run-process records in
# SLOT_DIR/shared/tmp/<instance>.pid ("PID STARTTIME"; a PID that now belongs to another
# process, or to none, is not running) and every process below it. No cgroups needed (the
# sandbox's systemctl has none). One awk, every file read with getline (a process that ends
# meanwhile is a file that no longer opens, not an error): status runs `memory` on every call;
# `listening` adds one `ls` of the instances' fds.
verb=$1
case "$verb" in
    memory | listening) ;;
    *) echo "slot-instances.sh: unknown verb '$verb' (memory or listening)" >&2; exit 2 ;;
esac
shift
count=$#
for dir do
    set -- "$@" @slot
    for file in "$dir"/shared/tmp/*.pid; do
        [ -f "$file" ] && set -- "$@" "$file"
    done
done
shift "$count"
exec awk -v verb="$verb" '
function pss(pid,   file, line, f, kb) {
    file = "/proc/" pid "/smaps_rollup"
    kb = 0
    while ((getline line < file) > 0)
        if (line ~ /^Pss:/) { split(line, f, " "); kb = f[2]; break }
    close(file)
    return kb
}
# The sockets (inodes) the processes in `dirs` (" /proc/PID/fd" each) hold, as owner[inode] =
# their instance, from one `ls`: "... -> socket:[INODE]" under each "/proc/PID/fd:" heading
# (which ls writes for two operands or more: the first is given twice).
function sockets(dirs,   first, cmd, line, pid) {
    split(dirs, first, " ")
    cmd = "ls -l" dirs " " first[1] " 2>/dev/null"
    while ((cmd | getline line) > 0) {
        if (line ~ /^\/proc\/[0-9]+\/fd:$/) { pid = line; gsub(/[^0-9]/, "", pid); continue }
        if (match(line, /socket:\[[0-9]+\]$/)) owner[substr(line, RSTART + 8, RLENGTH - 9)] = root[pid]
    }
    close(cmd)
}
# heard[r]: the JSON strings of the local addresses of the listening (state 0A) sockets that
# instance r holds: in each table, the local address is field 2, the inode field 10.
function listening(   t, table, line, f, r) {
    for (t = 1; t <= 2; t++) {
        table = t == 1 ? "/proc/net/tcp" : "/proc/net/tcp6"
        while ((getline line < table) > 0) {
            split(line, f, " ")
            if (f[4] != "0A" || !(f[10] in owner)) continue
            r = owner[f[10]]
            heard[r] = heard[r] (heard[r] == "" ? "" : ", ") "\"" f[2] "\""
        }
        close(table)
    }
}
BEGIN {
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
    dirs = ""
    for (r = 1; r <= roots; r++) {
        if (!(rpid[r] in started) || started[rpid[r]] != rstart[r]) continue
        running[r] = 1
        todo = rpid[r]
        while (todo != "") {
            n = split(todo, queue, " "); todo = ""
            for (j = 1; j <= n; j++) {
                if (queue[j] in root) continue
                root[queue[j]] = r
                if (verb == "memory") used[r] += pss(queue[j])
                else dirs = dirs " /proc/" queue[j] "/fd"
                todo = todo " " kids[queue[j]]
            }
        }
    }
    if (verb == "memory") {
        while ((getline line < "/proc/meminfo") > 0)
            if (line ~ /^MemAvailable:/) { split(line, f, " "); available = f[2] }
        close("/proc/meminfo")
        printf "{\"available\": %d, \"slots\": [", available + 0
    } else {
        if (dirs != "") sockets(dirs)
        listening()
        printf "{\"slots\": ["
    }
    for (s = 1; s <= slots; s++) {
        out = ""
        for (r = 1; r <= roots; r++) {
            if (rslot[r] != s || !(r in running)) continue
            value = verb == "memory" ? used[r] + 0 : "[" heard[r] "]"
            out = out (out == "" ? "" : ", ") "\"" rname[r] "\": " value
        }
        printf "%s{%s}", (s > 1 ? ", " : ""), out
    }
    print "]}"
    exit
}' "$@" @proc /proc/[0-9]*/stat
