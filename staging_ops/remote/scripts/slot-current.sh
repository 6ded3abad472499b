# slot-current.sh set CURRENT RELEASE | clear CURRENT | read CURRENT
# slot-current.sh stop CURRENT UNIT... | discard PARTIAL
#
# set:     CURRENT -> releases/RELEASE atomically (a new link renamed over the old one)
# clear:   no CURRENT: the slot has no release to serve
# read:    where CURRENT points ('' when it does not exist)
# stop:    stop the slot's units, then clear CURRENT (boot starts nothing of it)
# discard: remove a release directory an export left half made
set -u
verb=$1
shift
case $verb in
  set) tmp=${1%/*}/.current.tmp && ln -sfn "releases/$2" "$tmp" && mv -T "$tmp" "$1" ;;
  clear) rm -f "$1" ;;
  read) readlink "$1" || true ;;
  stop) current=$1 && shift && systemctl stop "$@" && rm -f "$current" ;;
  discard) rm -rf "$1" ;;
  *) echo "slot-current.sh: no verb $verb" >&2 && exit 2 ;;
esac
