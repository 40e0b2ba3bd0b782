#!/bin/sh
# Install the commune-monitor agent on a commune PC (Debian/Ubuntu, as root):
#   sh systemd/install-agent.sh --config pc-01.toml
# It creates the system user commune-agent, a venv in /opt/commune-agent/venv holding only the
# agent (psutil, paho-mqtt, speedtest-cli, icmplib: no server packages), the config in
# /etc/commune-agent/agent.toml and the hardened unit commune-agent.service, then starts it.
#   --prefix DIR   install under DIR instead of / (for a test or a staging tree; nothing is started)
#   --config FILE  the agent config (from `commune-collector enroll`); kept if absent
#   --source SPEC  what pip installs (default: this checkout)
#   --no-enable    do not create the user nor enable/start the service
# The agent needs Python 3.8 or newer: the system's python3 when it is (Ubuntu 20.04 and later,
# Debian 11 and later), or the interpreter named by PYTHON=...; otherwise it says what to install.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
prefix=""
config=""
source="$here"
enable=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --source) source="$2"; shift 2 ;;
    --no-enable) enable=0; shift ;;
    *) echo "install-agent.sh: unknown option $1 (see the comments at the top)" >&2; exit 2 ;;
  esac
done
[ -n "$prefix" ] && enable=0

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "install-agent.sh: $python is not installed; the agent needs Python 3.8 or newer: apt-get install python3 python3-venv" >&2
  exit 1
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
  cat >&2 <<EOF
install-agent.sh: the agent needs Python 3.8 or newer, and $python here is $version ($(command -v "$python")).
  Ubuntu 18.04: apt-get install python3.8 python3.8-venv, then: PYTHON=python3.8 sh $0 ...
  Debian 10: build or install Python 3.8+ (e.g. pyenv), then: PYTHON=/path/to/python3.X sh $0 ...
  Or copy the single-file agent (make agent-binary), which needs no Python on the PC.
EOF
  exit 1
fi
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "install-agent.sh: Python $version has no venv module: apt-get install python3-venv (or python$version-venv)" >&2
  exit 1
fi

opt="$prefix/opt/commune-agent"
etc="$prefix/etc/commune-agent"
units="$prefix/etc/systemd/system"

if [ "$enable" = 1 ] && ! id commune-agent >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/commune-agent --shell /usr/sbin/nologin commune-agent
fi

"$python" -m venv "$opt/venv"
"$opt/venv/bin/pip" install --quiet --disable-pip-version-check "$source[agent]"
cp "$here/README.md" "$opt/README.md"

mkdir -p "$etc" "$units"
if [ -n "$config" ]; then
  install -m 0640 "$config" "$etc/agent.toml"
elif [ ! -f "$etc/agent.toml" ]; then
  install -m 0640 "$here/config/agent.example.toml" "$etc/agent.toml"
  echo "install-agent.sh: edit $etc/agent.toml (or pass --config) before starting" >&2
fi
[ "$enable" = 1 ] && chgrp commune-agent "$etc/agent.toml"

sed -e "s#/opt/commune-agent#$opt#g" -e "s#/etc/commune-agent/agent.toml#$etc/agent.toml#g" \
  "$here/systemd/commune-agent.service" > "$units/commune-agent.service"

if [ "$enable" = 1 ]; then
  systemctl daemon-reload
  systemctl enable --now commune-agent.service
  echo "commune-agent installed and started: journalctl -u commune-agent -f"
else
  echo "commune-agent installed under ${prefix:-/} (not started)"
fi
