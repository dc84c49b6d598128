#!/bin/sh
# Installs the Debian packages given as arguments that are not installed yet.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "missing Debian packages:$missing" >&2
    echo "run as root, or install them: apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# no service of these packages is started (nginx on port 80, prometheus):
# the suite and the demo run their own nginx, and need promtool only.  A
# policy-rc.d that refuses, as Debian's container images have, for the time
# of the install, unless the machine has a policy of its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null \
        && $SUDO chmod 755 $policy \
        && trap '$SUDO rm -f $policy' EXIT && trap 'exit 1' INT TERM
fi

$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || { echo "apt-get install$missing failed" >&2; exit 1; }
