# lock-guard.sh HOLDER TOKEN FENCE_WAIT LOST LOST_MARK -- PROGRAM [ARG...]
#
# Runs PROGRAM with its ARGs only while the slot's lock is still ours: HOLDER's first word must
# be TOKEN, else LOST_MARK and the holder's description go to stderr and the exit code is LOST.
# The check and PROGRAM run under the fence, which a new holder takes to write its token, so
# no takeover lands between them. PROGRAM is run as its words say (like flock, setsid or sudo
# run theirs): nothing here reads it as shell text.
#
# File descriptors (staging_ops/deploy/fds.py): 6 the fence, closed for PROGRAM: a service
# PROGRAM starts would otherwise hold the fence for ever.
if [ "$#" -lt 7 ] || [ "$6" != "--" ]; then
    echo "$0: usage: HOLDER TOKEN FENCE_WAIT LOST LOST_MARK -- PROGRAM [ARG...]" >&2
    exit 2
fi
holder=$1 token=$2 wait=$3 lost=$4 mark=$5
shift 6
exec 6>>"$holder" || exit 1
flock -w "$wait" 6 || exit 1
t=; d=; read -r t d < "$holder"
if [ "$t" != "$token" ]; then echo "$mark" "$d" >&2; exit "$lost"; fi
# A child, not exec: this shell keeps the fence (fd 6) until PROGRAM is done.
"$@" 6>&-
