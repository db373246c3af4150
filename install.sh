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

# ---------------------------------------------------------------------------------- preflight
blockers=()
block() { blockers+=("$1"$'\n'"    fix: $2"); }

is_private_v4() {
  case "$1" in
    # Private, loopback, link-local, shared (CGNAT) and documentation ranges.
    10.* | 127.* | 169.254.* | 192.168.* | 192.0.2.* | 198.51.100.* | 203.0.113.* | 198.1[89].* | 100.6[4-9].* | 100.[7-9][0-9].* | 100.1[01][0-9].* | 100.12[0-7].*) return 0 ;;
    172.1[6-9].* | 172.2[0-9].* | 172.3[01].*) return 0 ;;
  esac
  return 1
}

detect_addresses() {
  local address
  if [ -z "$ipv4" ]; then
    for address in $(ip -o -4 addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'); do
      if ! is_private_v4 "$address"; then ipv4="$address"; break; fi
    done
  fi
  if [ -z "$ipv6" ]; then
    for address in $(ip -o -6 addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'); do
      case "$address" in fc* | fd* | 2001:db8:* | 2001:0db8:*) ;; *) ipv6="$address"; break ;; esac
    done
  fi
  # A private box is reached at its address on its own network.
  if [ "$private" = yes ] && [ -z "$ipv4" ] && [ -z "$ipv6" ]; then
    ipv4="$(ip -o -4 addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }')"
  fi
}

# The program listening on a TCP or UDP port and its pid ("name pid"), or nothing.
port_owner() {
  local found name pid exe
  found="$(ss -Hlntup "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 \2/p' | head -n 1)"
  [ -n "$found" ] || return 0
  name="${found% *}" pid="${found#* }"
  # The program's file names it better than its thread's name (Node's is "MainThread").
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  if [ -n "$exe" ]; then name="$(basename "$exe")"; fi
  printf '%s %s\n' "$name" "$pid"
}

# Whether a process is the box's own: one of its units, or a Debian daemon the install disables.
ours() {
  case "$1" in
    master | dovecot | knotd | prosody | lua* | opendkim | exim4) return 0 ;;
  esac
  grep -q 'coyote' "/proc/$2/cgroup" 2>/dev/null || [ "$(stat -c %U "/proc/$2" 2>/dev/null)" = coyote ]
}

preflight() {
  if [ "$(id -u)" != 0 ]; then
    block "not running as root" "sudo $0${given:+ $given}"
    return
  fi
  command -v ss >/dev/null || block "ss is missing (it finds the programs on the box's ports)" "apt-get install iproute2"
  local os_id="" os_version=""
  if [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    os_id="$(. /etc/os-release && echo "${ID:-}")"
    # shellcheck source=/dev/null
    os_version="$(. /etc/os-release && echo "${VERSION_ID:-}")"
  fi
  case "$os_id:$os_version" in
    debian:12 | debian:13 | ubuntu:24.04) ;;
    *) block "unsupported system: ${os_id:-unknown} ${os_version:-}" "install on Debian 12 or 13, or Ubuntu 24.04" ;;
  esac
  case "$(uname -m)" in
    x86_64 | aarch64) ;;
    *) block "unsupported architecture: $(uname -m)" "install on an x86_64 or aarch64 machine" ;;
  esac
  local memory_mb disk_mb
  memory_mb="$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
  if [ "$memory_mb" -lt "$min_memory_mb" ]; then
    block "only ${memory_mb} MB of memory; the box needs 1 GB" "give the machine at least 1 GB of memory"
  fi
  mkdir -p "$(dirname "$prefix")" "$(dirname "$state")"
  disk_mb="$(df -Pm "$(dirname "$prefix")" | awk 'NR == 2 { print $4 }')"
  if [ "$disk_mb" -lt "$min_disk_mb" ]; then
    block "only ${disk_mb} MB free on $(dirname "$prefix"); the box needs ${min_disk_mb} MB" "free disk space or give the machine a bigger disk"
  fi
  if [ "$start" = yes ] && [ ! -d /run/systemd/system ]; then
    block "systemd is not running this machine (a container?)" "boot the machine with systemd, or install with --no-start to make an image"
  fi
  local port owner
  for port in $public_ports; do
    owner="$(port_owner "$port")"
    [ -z "$owner" ] && continue
    # shellcheck disable=SC2086 # "name pid"
    if ! ours $owner; then
      block "port $port is taken by ${owner% *} (pid ${owner#* })" "stop and disable ${owner% *} (systemctl disable --now <its service>), or remove its package"
    fi
  done
  detect_addresses
  if [ -z "$ipv4" ] && [ -z "$ipv6" ] && [ "$private" = no ]; then
    block "no public address on this machine: a box needs one to receive mail and obtain certificates" "behind NAT, give --ipv4 <public address>; on a LAN or for a test, install with --private"
  fi
  if [ -n "$email" ] && [ "$private" = yes ]; then
    block "--email asks for Let's Encrypt certificates, which a box without a public address cannot obtain" "leave out --email or --private"
  fi
}

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

# ---------------------------------------------------------------------------------- packages
packages=(git acl ca-certificates curl iproute2 knot knot-dnsutils)
[ "$mail" = yes ] && packages+=(postfix dovecot-core dovecot-imapd opendkim)
[ "$xmpp" = yes ] && packages+=(prosody)
[ "$docker" = yes ] && packages+=(docker.io busybox-static)

install_packages() {
  local missing=() package
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # Debian's own instances of the daemons are not started: the box runs its own, on its files.
  local policy=/usr/sbin/policy-rc.d own_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Written by install.sh while it installs packages.\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    own_policy=yes
  fi
  apt-get update -q >&2 || say "apt-get update failed; trying with the package lists there are"
  local status=0
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || status=$?
  [ "$own_policy" = yes ] && rm -f "$policy"
  [ "$status" -eq 0 ] || die "apt-get install failed (its message is above)"
}

# Debian's instances would take the box's ports; the box runs its own from /var/lib/coyote.
disable_distribution_daemons() {
  [ -d /run/systemd/system ] || command -v systemctl >/dev/null || return 0
  local service
  for service in postfix dovecot opendkim prosody knot exim4; do
    if systemctl list-unit-files "$service.service" >/dev/null 2>&1 && systemctl is-enabled "$service.service" >/dev/null 2>&1; then
      say "disabling Debian's own $service (the box runs its own)"
      systemctl disable --now "$service.service" >/dev/null 2>&1 || systemctl disable "$service.service" >/dev/null 2>&1 || true
    fi
  done
}

# ------------------------------------------------------------------------------------- Node.js
node_bin=""
ensure_node() {
  local system_node
  system_node="$(command -v node || true)"
  if [ -n "$system_node" ] && [ "$("$system_node" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0)" -ge "$node_major" ]; then
    node_bin="$system_node"
    return
  fi
  # ./coyote installs Node.js into COYOTE_RUNTIME_DIR (with whatever npm the machine has) and,
  # with COYOTE_RUNTIME_ONLY, stops there.
  if [ ! -x "$prefix/node/bin/node" ] || [ "$("$prefix/node/bin/node" -e 'process.stdout.write(process.versions.node.split(".")[0])')" != "$node_major" ]; then
    mkdir -p "$prefix/node"
    COYOTE_RUNTIME_DIR="$prefix/node" COYOTE_FORCE_RUNTIME=1 COYOTE_RUNTIME_ONLY=1 "$here/coyote" >&2
  fi
  node_bin="$prefix/node/bin/node"
}

# What builds a release, here and in `coyote update`: this Node and its npm first on the PATH
# (never an older one of the system's), native addons built against its headers, no telemetry.
build_env() {
  local node_dir headers
  node_dir="$(dirname "$node_bin")"
  export PATH="$node_dir:$PATH"
  for headers in "$prefix"/node/node_modules/node-linux-*; do
    if [ -d "$headers/include" ] && [ "$node_bin" = "$prefix/node/bin/node" ]; then export npm_config_nodedir="$headers"; fi
  done
  export TURBO_TELEMETRY_DISABLED=1 NEXT_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
}

# ------------------------------------------------------------------------------------ release
# The checkout's release, named (and, with --copy-to DIR, copied) as `coyote update` does it:
# Node runs the CLI's own TypeScript source for it, before anything is installed or built.
checkout_release() {
  "$node_bin" "$here/packages/cli/src/release/checkout-main.ts" "$here" "$@"
}

# Copies the checkout's tracked files into a new release, installs its dependencies and builds
# it; a release marked complete (.coyote-release.json, written last) is reused as it is.
make_release() {
  local release dir
  release="$(checkout_release)" || die "this checkout cannot make a release (the reason is above)"
  dir="$prefix/releases/$release"
  if [ -f "$dir/.coyote-release.json" ]; then echo "$release"; return 0; fi
  say "building release $release in $dir (a few minutes)"
  rm -rf "$dir" "$dir.partial"
  checkout_release --copy-to "$dir.partial" >/dev/null || die "copying the checkout into $dir.partial failed (the reason is above)"
  (
    cd "$dir.partial"
    npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2
    npm run build >&2
  ) || { rm -rf "$dir.partial"; die "building release $release failed (the output is above)"; }
  printf '{\n  "release": "%s",\n  "preparedAt": "%s",\n  "preparedBy": "install.sh"\n}\n' "$release" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dir.partial/.coyote-release.json"
  mv "$dir.partial" "$dir"
  echo "$release"
}

# Points a symlink at a target atomically (a new link renamed over the old one).
link() {
  ln -sfn "$1" "$2.new"
  mv -Tf "$2.new" "$2"
}

# ------------------------------------------------------------------------------------ the box
ensure_user() {
  if ! getent group coyote >/dev/null; then groupadd --system coyote; fi
  if ! id coyote >/dev/null 2>&1; then
    useradd --system --gid coyote --home-dir "$state" --no-create-home --shell /usr/sbin/nologin coyote
  fi
  if [ "$docker" = yes ] && getent group docker >/dev/null; then usermod -a -G docker coyote; fi
}

ensure_dirs() {
  install -d -m 0755 -o root -g root "$prefix" "$prefix/releases" "$conf_dir"
  install -d -m 0700 -o coyote -g coyote "$state"
  install -d -m 0700 -o coyote -g coyote "$state/logs" "$state/run"
}

write_conf() {
  local file="$conf_dir/install.conf" text
  text="$(printf '# The choices install.sh made for this box; it reads them again on every run.\nmail=%s\nxmpp=%s\ndocker=%s\nprivate=%s\nemail=%s\n' "$mail" "$xmpp" "$docker" "$private" "$email")"
  if [ "$(cat "$file" 2>/dev/null)" != "$text" ]; then printf '%s\n' "$text" > "$file.new" && mv -f "$file.new" "$file"; fi
}

write_cli_link() {
  local text
  # shellcheck disable=SC2016 # "$PATH" and "$@" are the wrapper's own
  text="$(printf '#!/bin/sh\n# The Coyote CLI of the running release, on the box'"'"'s state, with its Node first on the PATH.\nPATH=%s:"$PATH" COYOTE_STATE=%s COYOTE_HOME=%s exec %s %s "$@"\n' "'$(dirname "$node_bin")'" "'$state'" "'$prefix/current'" "'$node_bin'" "'$prefix/current/dist/coyote.mjs'")"
  if [ "$(cat "$bin_link" 2>/dev/null)" != "$text" ]; then
    printf '%s\n' "$text" > "$bin_link.new" && chmod 755 "$bin_link.new" && mv -f "$bin_link.new" "$bin_link"
  fi
}

coyote_cli() {
  COYOTE_STATE="$state" COYOTE_HOME="$prefix/current" "$node_bin" "$prefix/current/dist/coyote.mjs" "$@"
}

setup_box() {
  local spec_args=() unit_args=(--units-only --units-dir "$units_dir" --current "$prefix/current" --node "$node_bin")
  [ -n "$hostname_flag" ] && spec_args+=(--hostname "$hostname_flag")
  spec_args+=(--default-hostname "$(hostname -f 2>/dev/null || hostname)")
  [ -n "$ipv4" ] && spec_args+=(--ipv4 "$ipv4")
  [ -n "$ipv6" ] && spec_args+=(--ipv6 "$ipv6")
  [ -n "$email" ] && spec_args+=(--email "$email")
  [ "$mail" = no ] && unit_args+=(--no-mail)
  [ "$xmpp" = no ] && unit_args+=(--no-xmpp)
  # The spec and the token as the state folder's owner, so that every file in it is coyote's;
  # the units as root.
  setpriv --reuid=coyote --regid=coyote --clear-groups env HOME="$state" COYOTE_STATE="$state" COYOTE_HOME="$prefix/current" \
    "$node_bin" "$prefix/current/dist/coyote.mjs" setup --no-units "${spec_args[@]}" >&2
  coyote_cli setup "${unit_args[@]}" | tee "$setup_out" >&2
  if [ -n "$join_token" ]; then
    install -m 0600 -o coyote -g coyote /dev/null "$state/secrets/join-token"
    printf '%s\n' "$join_token" > "$state/secrets/join-token"
    say "the join token is kept in $state/secrets/join-token: joining a buddy is not built yet, so this box starts on its own"
  fi
}

# Whether the panel answers at the activation URL (asked on this machine, by the box's own name).
panel_answers() {
  local url host port
  url="$(coyote_cli activation --json 2>/dev/null | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')"
  [ -n "$url" ] || return 1
  host="$(printf '%s' "$url" | sed -n 's|^https://\([^/:]*\).*|\1|p')"
  port="$(printf '%s' "$url" | sed -n 's|^https://[^/:]*:\([0-9]*\).*|\1|p')"
  curl -fsS -o /dev/null --max-time 5 -k --resolve "$host:${port:-443}:127.0.0.1" "$url"
}

# Every unit of the box is started with coyote.target at boot (systemctl works offline too, for images).
enable_units() {
  local units
  units="$(units_of_coyote | grep -v -- '-reload\.service$' | grep -v '^coyote\.target$' || true)"
  # shellcheck disable=SC2086 # one unit name per word
  systemctl enable coyote.target $units >/dev/null 2>&1
}

start_box() {
  systemctl daemon-reload
  local changed
  enable_units
  systemctl start coyote.target
  # A unit whose file changed runs its new lines; the others are left alone.
  changed="$(sed -n 's/^  written: \(coyote-.*\.service\)$/\1/p' "$setup_out" | grep -v -- '-reload\.service$' || true)"
  # shellcheck disable=SC2086
  if [ -n "$changed" ]; then systemctl try-restart $changed; fi
  say "waiting for the box to answer"
  local deadline=$((SECONDS + 300))
  until panel_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      systemctl --no-pager status 'coyote*' >&2 || true
      die "the box did not answer within 5 minutes; its logs are in $state/logs (coyote logs)"
    fi
    sleep 2
  done
}

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
