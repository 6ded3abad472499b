# lock-kill.sh PID
# Ends a stale deploy lock's holder: its whole process group (it leads one, see
# lock-hold.sh; its `cat` child holds the lock's fd too), else the process alone.
kill -- "-$1" 2>/dev/null || kill "$1"
sleep 0.2
