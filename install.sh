#!/usr/bin/env bash
# install.sh: makes this machine a Coyote box (docs/PRODUCTION.md). Run as root from a checkout:
#
#   ./install.sh [--hostname box.example.org] [--email admin@example.org]
#
# It checks the machine first and names every blocker with its fix; installs Node.js 24 LTS into
# /opt/coyote/node when the system's Node is older, and the Debian packages of the box's daemons;
# creates the coyote user, /opt/coyote (the built appliance) and /var/lib/coyote (the state,
# 0700); writes the server spec and one hardened systemd unit per component and daemon; starts
# the box, waits until it answers, and prints the activation URL and one-time token.
# Running it again changes nothing; running it from a newer checkout upgrades the box.
set -euo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
prefix="${COYOTE_PREFIX:-/opt/coyote}"
state="${COYOTE_STATE:-/var/lib/coyote}"
conf_dir="${COYOTE_CONF_DIR:-/etc/coyote}"
units_dir="${COYOTE_UNITS_DIR:-/etc/systemd/system}"
bin_link="${COYOTE_BIN_LINK:-/usr/local/bin/coyote}"
node_version="$(tr -d '[:space:]' < "$here/tooling/node-version")"
node_major="${node_version%%.*}"
min_memory_mb="${COYOTE_MIN_MEMORY_MB:-900}"
min_disk_mb="${COYOTE_MIN_DISK_MB:-4096}"
public_ports="25 53 80 443 465 587 143 993 5222 5269"

say() { printf 'install: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  cat <<'EOF'
Usage: ./install.sh [options]        (as root, from a Coyote checkout)

  --hostname NAME   the box's hostname (default: this machine's fully qualified name)
  --email ADDRESS   certificates from Let's Encrypt, which writes to this address
                    (default: certificates from the box's own CA)
  --ipv4 ADDRESS    the box's public IPv4 address, when the machine is behind NAT
  --ipv6 ADDRESS    the box's public IPv6 address
  --private         install on a machine with no public address (a LAN box or a test)
  --join TOKEN      join an existing box as its buddy (kept for coyote-listener)
  --no-mail         leave Postfix, Dovecot and OpenDKIM out
  --no-xmpp         leave Prosody out
  --no-docker       leave the Docker engine out (apps run as processes)
  --no-start        install everything but start nothing (for server images)
  --check           only check whether this machine can become a box, and say why not
  --uninstall       remove the appliance and its units; keep the data in /var/lib/coyote
  --purge           remove the appliance, its units and its data
  -h, --help        this text
EOF
}

# ------------------------------------------------------------------------------------- flags
given="$*"
hostname_flag="" email="" ipv4="" ipv6="" join_token=""
private=no mail=yes xmpp=yes docker=yes start=yes action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --hostname) hostname_flag="${2:?--hostname needs a name}"; shift 2 ;;
    --email) email="${2:?--email needs an address}"; shift 2 ;;
    --ipv4) ipv4="${2:?--ipv4 needs an address}"; shift 2 ;;
    --ipv6) ipv6="${2:?--ipv6 needs an address}"; shift 2 ;;
    --join) join_token="${2:?--join needs a token}"; shift 2 ;;
    --private) private=yes; shift ;;
    --no-mail) mail=no; shift ;;
    --no-xmpp) xmpp=no; shift ;;
    --no-docker) docker=no; shift ;;
    --no-start) start=no; shift ;;
    --check) action=check; shift ;;
    --uninstall) action=uninstall; shift ;;
    --purge) action=purge; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

# The choices of the first install stay the box's until a flag says otherwise.
remembered() { [ -f "$conf_dir/install.conf" ] && sed -n "s/^$1=//p" "$conf_dir/install.conf" | tail -n 1; }
if [ -f "$conf_dir/install.conf" ]; then
  for flag in mail xmpp docker private; do
    value="$(remembered "$flag")"
    # A flag given now wins; "yes" is the default, so only a remembered "no" (or private "yes") applies.
    if [ "$flag" = private ]; then [ "$value" = yes ] && private=yes; else [ "$value" = no ] && eval "$flag=no"; fi
  done
  [ -z "$email" ] && email="$(remembered email)"
fi

# ----------------------------------------------------------------------------------- uninstall
units_of_coyote() { find "$units_dir" -maxdepth 1 -name 'coyote*' \( -name '*.service' -o -name '*.path' -o -name '*.target' \) -printf '%f\n' 2>/dev/null | sort; }

uninstall() {
  [ "$(id -u)" = 0 ] || die "run as root: sudo $0 --$action"
  local units
  units="$(units_of_coyote)"
  if [ -n "$units" ] && [ -d /run/systemd/system ]; then
    say "stopping the box"
    # shellcheck disable=SC2086 # one unit name per word
    systemctl disable --now $units >/dev/null 2>&1 || true
  fi
  for unit in $units; do
    if head -n 1 "$units_dir/$unit" | grep -q '^# Rendered by Coyote'; then rm -f "$units_dir/$unit"; fi
  done
  [ -d /run/systemd/system ] && systemctl daemon-reload
  rm -rf "$prefix" "$bin_link" "$conf_dir"
  if [ "$action" = purge ]; then
    rm -rf "$state"
    if id coyote >/dev/null 2>&1; then userdel coyote >/dev/null 2>&1 || true; fi
    say "removed Coyote and its data"
  else
    say "removed Coyote; its data stays in $state (./install.sh --purge removes it)"
  fi
}

if [ "$action" = uninstall ] || [ "$action" = purge ]; then uninstall; exit 0; fi

# ------------------------------------------------------------- the parts, in tooling/install/
# shellcheck source=tooling/install/preflight.sh
. "$here/tooling/install/preflight.sh"
# shellcheck source=tooling/install/system.sh
. "$here/tooling/install/system.sh"
# shellcheck source=tooling/install/box.sh
. "$here/tooling/install/box.sh"

preflight
if [ "${#blockers[@]}" -gt 0 ]; then
  say "this machine cannot become a Coyote box yet:"
  for blocker in "${blockers[@]}"; do printf '  - %s\n' "$blocker" >&2; done
  exit 1
fi
if [ "$action" = check ]; then
  say "this machine can become a Coyote box (reached at $(printf '%s %s' "$ipv4" "$ipv6" | xargs))"
  exit 0
fi

# What coyote setup said of the units, for start_box (outside the state folder, which is coyote's).
setup_out="$(mktemp)"
trap 'rm -f "$setup_out"' EXIT

main() {
  install_packages
  disable_distribution_daemons
  ensure_node
  build_env
  ensure_user
  ensure_dirs
  if [ -L "$prefix/current" ]; then
    # An installed box: the running release's update makes this checkout's release, migrates the
    # state with it, switches and restarts, or rolls back by itself; the same release changes nothing.
    coyote_cli update --source "$here" --root "$prefix" >&2
  else
    local release
    release="$(make_release)"
    link "releases/$release" "$prefix/current"
  fi
  write_conf
  write_cli_link
  setup_box
  if [ "$start" = no ]; then
    enable_units
    say "installed and enabled; nothing started (--no-start): the box starts on the next boot"
    return
  fi
  start_box
  coyote_cli activation
}

main
