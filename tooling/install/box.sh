# shellcheck shell=bash
# shellcheck disable=SC2154 # the settings and flags are install.sh's, which sources this file
# install.sh's box: the coyote user and folders, the CLI, the server spec and units, starting.

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
  # Asked here, never through the proxy the admin's environment may name.
  curl -fsS -o /dev/null --max-time 5 -k --noproxy '*' --resolve "$host:${port:-443}:127.0.0.1" "$url"
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
