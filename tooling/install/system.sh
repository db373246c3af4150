# shellcheck shell=bash
# shellcheck disable=SC2154 # the settings and flags are install.sh's, which sources this file
# install.sh's parts of the machine: the Debian packages, Node.js, and the releases it builds.

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
