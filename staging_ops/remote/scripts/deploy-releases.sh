# deploy-releases.sh list RELEASES
# deploy-releases.sh spec RELEASES RELEASE
# deploy-releases.sh record RELEASES DEPLOYS_LOG LINE RELEASE PREVIOUS KEEP
#
# list: every release in RELEASES, newest first, as one JSON line: an array of
#   {"name": ..., "bad": true|false, "verified": true|false, "commit": ..., "branch": ...}
#   (commit and branch as its .release-env says, without their double quotes; "" if none).
# record: appends LINE to DEPLOYS_LOG, marks RELEASE verified (.ok) and keeps the newest KEEP
#   releases, never RELEASE, PREVIOUS or the one rollback would pick (the newest verified one
#   older than RELEASE, not marked bad). Exit 3 if the line or the mark could not be written.
#   Idempotent: a run that lost its connection during record runs it again with the same LINE
#   (its time included), which is then not appended twice.
# spec: RELEASE's .process-spec.json (nothing for a release made before there was one).
# Release names start with their UTC time, so a sort by name is a sort by age.

# Is release "$1" verified-good? Its `.ok`, or, for releases made before `.ok` existed, a line
# for it in the deploy log (beside releases/), which only a verified deploy or rollback ever
# wrote (the release is the line's last field).
verified() {
  [ -e "$1/.ok" ] || awk -v r="$1" '$NF == r { found = 1 } END { exit !found }' ../deploys.log 2>/dev/null
}

# "$1" as a JSON string: backslashes and double quotes escaped, control characters (none
# belongs in these values) dropped.
json_string() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037\177' | sed 's/[\\"]/\\&/g')"
}

# Release "$1"'s .release-env value "$2", without the double quotes it is written in.
release_value() {
  v=$(sed -n "s/^$2=//p" "$1/.release-env" 2>/dev/null)
  v=${v#\"}
  printf '%s' "${v%\"}"
}

list() {
  printf '['
  sep=
  if cd "$1" 2>/dev/null; then
    # shellcheck disable=SC2012  # our release names: no blanks, no leading dash
    for r in $(ls -1 | sort -r); do
      bad=false; [ -e "$r/.bad" ] && bad=true; ok=false; verified "$r" && ok=true
      printf '%s{"name": %s, "bad": %s, "verified": %s, "commit": %s, "branch": %s}' "$sep" \
        "$(json_string "$r")" "$bad" "$ok" \
        "$(json_string "$(release_value "$r" DEPLOYED_COMMIT)")" \
        "$(json_string "$(release_value "$r" DEPLOYED_BRANCH)")"
      sep=', '
    done
  fi
  echo ']'
}

spec() {
  cat "$1/$2/.process-spec.json" 2>/dev/null || true
}

# The release could not be marked verified: exit 3 (a prune that could not remove something
# is no failure; this is: without the mark, the release reads as never verified).
unmarked() {
  echo "$0: $1" >&2
  exit 3
}

record() {
  releases=$1 deploys_log=$2 line=$3 release=$4 previous=$5 keep=$6
  grep -qxF -- "$line" "$deploys_log" 2>/dev/null ||
    { echo "$line" >> "$deploys_log"; } 2>/dev/null || unmarked "cannot append to $deploys_log"
  cd "$releases" 2>/dev/null || unmarked "no directory $releases"
  touch "$release/.ok" 2>/dev/null || unmarked "cannot write $releases/$release/.ok"
  target=""; past=""
  # shellcheck disable=SC2012  # our release names: no blanks, no leading dash
  for r in $(ls -1 | sort -r); do
    if [ -n "$past" ] && verified "$r" && [ ! -e "$r/.bad" ]; then target=$r; break; fi
    [ "$r" = "$release" ] && past=1
  done
  # shellcheck disable=SC2012  # as above
  ls -1 | sort | head -n -"$keep" | while read -r r; do
    case "$r" in "$release"|"$previous"|"$target") ;; *) rm -rf -- "$r" ;; esac
  done
}

case "$1" in
  list) shift; list "$@" ;;
  record) shift; record "$@" ;;
  spec) shift; spec "$@" ;;
  *) echo "$0: unknown action ${1:-(none)}" >&2; exit 2 ;;
esac
