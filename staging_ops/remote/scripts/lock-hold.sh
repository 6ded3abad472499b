# lock-hold.sh LOCK NOTE HOLDER FENCED NOTE_PREFIX BUSY FENCE_WAIT
#
# Takes the slot's deploy lock and holds it until stdin (our SSH channel) ends: a deploy that
# dies, however, closes the channel and the kernel drops the lock. Run under `setsid -w`, so
# this shell leads its own process group and a takeover can kill it with its `cat`.
#
# LOCK         the lock file, flocked on fd 9
# NOTE         the JSON note saying who holds the lock (NOTE_PREFIX, then our pid, then "}")
# HOLDER       the fencing file, flocked on fd 6 while FENCED (token, who, when) is written
# BUSY         the exit code when another holder has the lock (after BUSY and its note)
# FENCE_WAIT   seconds to wait for the fence (a guarded command holds it for one step)
#
# File descriptors (staging_ops/deploy/fds.py): 9 the deploy lock, 6 the fence.
lock=$1 note=$2 holder=$3 fenced=$4 note_prefix=$5 busy=$6 fence_wait=$7
exec 9>>"$lock" || exit 1
if ! flock -n 9; then echo BUSY; cat "$note" 2>/dev/null; echo; exit "$busy"; fi
# Under the fence: never between a guarded command's check and its step.
exec 6>>"$holder" || exit 1
flock -w "$fence_wait" 6 || exit 1
printf '%s\n' "$fenced" > "$holder"
exec 6>&-
printf '%s%s}' "$note_prefix" $$ > "$note"
echo LOCKED
cat >/dev/null
rm -f "$note"
