#!/bin/sh
# Builds the single-file agent inside an older Debian userland, so that the binary needs only that
# userland's glibc (Debian 11 "bullseye": glibc 2.31 and Python 3.9, the same glibc as Ubuntu 20.04).
# Why: a PyInstaller binary carries every library but glibc, and it needs the newest glibc symbol
# version that its bundled Python and libraries were linked against; built on Debian 12 that is 2.35.
#
#   sh packaging/build-in-old-debian.sh [SUITE]       (make agent-binary-old; root; SUITE default bullseye)
#
# The root is made once by debootstrap under build/<suite>-root (Debian's packages only) and kept;
# PyInstaller and the agent's dependencies come from PyPI into a venv inside it. The repository is
# bind-mounted read-only at /src in a private mount namespace, so nothing stays mounted after a
# failure; the binary is written to dist/<suite>/commune-agent.
set -eu

SUITE=${1:-bullseye}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT="$REPO/build/$SUITE-root"
OUT="$REPO/dist/$SUITE"
PACKAGES=python3,python3-venv,libpython3-stdlib,binutils,ca-certificates

die() { echo "build-in-old-debian: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mounts)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
case "$SUITE" in *[!a-z]*|"") die "suite must be a Debian code name such as bullseye, not '$SUITE'";; esac

if [ ! -f "$ROOT/.stamp-debootstrap" ]; then
  rm -rf "$ROOT"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$REPO/build/$SUITE-debootstrap.log" 2>&1 \
    || die "debootstrap $SUITE failed: see build/$SUITE-debootstrap.log"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # libpythonX.Y (the shared library PyInstaller bundles) belongs to the suite's python3.
  chroot "$ROOT" sh -c 'apt-get update -qq && apt-get install -y -qq "lib$(readlink /usr/bin/python3)" >/dev/null' \
    || die "cannot install the suite's libpython"
  touch "$ROOT/.stamp-debootstrap"
fi

# Name resolution and this machine's CA bundle (pip's HTTPS goes through what the host trusts).
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"

# The agent's and the build's requirements, read from pyproject.toml by the host's Python 3.11.
python3 - "$REPO/pyproject.toml" >"$ROOT/requirements.txt" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    extras = tomllib.load(handle)["project"]["optional-dependencies"]
print("\n".join(extras["agent"] + extras["binary"]))
EOF

mkdir -p "$ROOT/src" "$OUT"
unshare --mount --propagation private sh -eu -c '
  ROOT=$1; REPO=$2; OUT=$3
  mount --bind "$REPO" "$ROOT/src" && mount -o remount,bind,ro "$ROOT/src"
  mkdir -p "$ROOT/out" && mount --bind "$OUT" "$ROOT/out"
  mount -t proc proc "$ROOT/proc"
  chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 sh -eu -c "
    export HOME=/root PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
    [ -x /venv/bin/python ] || python3 -m venv /venv
    /venv/bin/python -m pip install -q --upgrade pip
    /venv/bin/python -m pip install -q -r /requirements.txt
    cd /src
    /venv/bin/pyinstaller --noconfirm --log-level WARN --distpath /out --workpath /work packaging/commune-agent.spec
  "
' sh "$ROOT" "$REPO" "$OUT"
echo "built $OUT/commune-agent ($(chroot "$ROOT" /usr/bin/python3 --version), glibc $(chroot "$ROOT" /usr/bin/ldd --version | head -1 | awk '{print $NF}'))"
