# lock-guard.sh HOLDER TOKEN FENCE_WAIT LOST LOST_MARK COMMAND
#
# Runs the shell COMMAND only while the slot's lock is still ours: HOLDER's first word must be
# TOKEN, else LOST_MARK and the holder's description go to stderr and the exit code is LOST.
# The check and COMMAND run under the fence, which a new holder takes to write its token, so
# no takeover lands between them.
#
# File descriptors (staging_ops/deploy/fds.py): 6 the fence, closed for COMMAND: a service
# COMMAND starts would otherwise hold the fence for ever.
_lock_holder=$1 _lock_token=$2 _lock_wait=$3 _lock_lost=$4 _lock_mark=$5 _lock_command=$6
shift 6
exec 6>>"$_lock_holder" || exit 1
flock -w "$_lock_wait" 6 || exit 1
_lock_t=; _lock_d=; read -r _lock_t _lock_d < "$_lock_holder"
if [ "$_lock_t" != "$_lock_token" ]; then echo "$_lock_mark" "$_lock_d" >&2; exit "$_lock_lost"; fi
# COMMAND is code (a step's own command), not a value: it runs as this shell would run it.
{ eval "$_lock_command"
} 6>&-
