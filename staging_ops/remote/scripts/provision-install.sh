# provision-install.sh PACKAGE...: apt-get update, then install the packages (a fresh droplet
# has no package lists). Plain progress lines (no fancy bar, no pty): provision-all streams
# dpkg's milestones from them.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q -o Dpkg::Progress-Fancy=0 -o Dpkg::Use-Pty=0 "$@"
