# acme-certbot.sh CA_BUNDLE CERTBOT_ARG...
# Obtains, expands or renews the host's certificate with certbot (webroot mode), run by
# provision-all when its plan says so (staging_ops/provision/certificates.py).
#   $1   a CA bundle that trusts the ACME server's own HTTPS ('' for the system's): a local
#        test server's; certbot reads it from REQUESTS_CA_BUNDLE, nothing else does
#   $2.. certbot's arguments
# Exit status: certbot's. Its errors are on stderr, the ACME server's own reason as `Detail:`.
set -u
bundle=$1
shift
if [ -n "$bundle" ]; then
  REQUESTS_CA_BUNDLE=$bundle
  export REQUESTS_CA_BUNDLE
fi
# Debian's certbot.timer renews on its own schedule: while that run holds certbot's lock, ours
# is refused at once ("Another instance of Certbot is already running"); wait for it (up to a
# minute) instead of failing the run.
tries=0
while :; do
  err=$(mktemp) || exit 1
  certbot --quiet "$@" 2>"$err"
  status=$?
  if [ "$status" -ne 0 ] && [ "$tries" -lt 30 ] &&
    grep -q "Another instance of Certbot is already running" "$err"; then
    tries=$((tries + 1))
    rm -f "$err"
    sleep 2
    continue
  fi
  cat "$err" >&2
  rm -f "$err"
  break
done
if [ "$status" -ne 0 ]; then
  # Debian 12's certbot (2.1, Python 3.11) hides any ACME error behind "AttributeError: can't
  # set attribute" (certbot#9539); its log of this run keeps the server's problem document.
  detail=$(grep -oE '"detail": *"([^"\\]|\\.)*"' /var/log/letsencrypt/letsencrypt.log 2>/dev/null |
    tail -n 1 | sed -e 's/^"detail": *"//' -e 's/"$//' -e 's/\\"/"/g')
  if [ -n "$detail" ]; then
    printf 'Detail: %s\n' "$detail" >&2
  fi
fi
exit "$status"
