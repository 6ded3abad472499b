#!/bin/sh
# Obtains, expands or renews the host's certificate with certbot (webroot mode), run by
# provision-all when its plan says so (staging_ops/provision/certificates.py).
#   $1   a CA bundle that trusts the ACME server's own HTTPS ('' for the system's): a local
#        test server's; certbot reads it from REQUESTS_CA_BUNDLE, nothing else does
#   $2.. certbot's arguments
# Exit status: certbot's. Its errors (the ACME server's own reason) are on stderr.
set -u
bundle=$1
shift
if [ -n "$bundle" ]; then
  REQUESTS_CA_BUNDLE=$bundle
  export REQUESTS_CA_BUNDLE
fi
exec certbot --quiet "$@"
