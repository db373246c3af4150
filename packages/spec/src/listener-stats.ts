// What coyote-listener reports in `stats/coyote-listener.json`, as its writer (the listener) and its
// readers (the crm, the CLI) name it.

/** The listener's stats counter that holds a buddy's last heartbeat (epoch ms). */
export function heartbeatCounter(fingerprint: string): string {
  return `buddy.${fingerprint}.lastHeartbeatAt`;
}
