# shellcheck shell=bash
# shellcheck disable=SC2154 # the settings and flags are install.sh's, which sources this file
# install.sh's checks of the machine: every blocker is named with its fix (docs/PRODUCTION.md).

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
