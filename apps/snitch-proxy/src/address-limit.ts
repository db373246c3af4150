// The connections one client address may hold at once, so that one address cannot take the whole
// connection budget and every site down with it. IPv6 is counted per /64: one customer line or
// one host gets a whole /64, and a client could otherwise open each connection from a new address.
import type { Socket } from "node:net";

/**
 * The key a client address is counted under: an IPv4 address itself (IPv4-mapped IPv6 included),
 * an IPv6 address's /64 prefix; the text as it is for anything else.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address === "") return "";
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!address.includes(":")) return address;
  const zone = address.indexOf("%");
  const bare = (zone < 0 ? address : address.slice(0, zone)).toLowerCase();
  const halves = bare.split("::");
  if (halves.length > 2) return bare;
  const left = halves[0] === "" || halves[0] === undefined ? [] : halves[0].split(":");
  const right = halves.length === 2 && halves[1] !== "" && halves[1] !== undefined ? halves[1].split(":") : [];
  // An embedded IPv4 tail (::ffff:a.b.c.d handled above; others are rare) lies past the /64 anyway.
  const missing = 8 - left.length - right.length;
  const groups = halves.length === 2 ? [...left, ...Array<string>(Math.max(0, missing)).fill("0"), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

/** Counts open connections per client address key and refuses those past the limit. */
export class AddressLimit {
  readonly #open = new Map<string, number>();
  /** Connections allowed per address key. */
  limit: number;

  /** @param limit connections allowed per address key (at least 1). */
  constructor(limit: number) {
    this.limit = limit;
  }

  /**
   * Counts a new connection; false when its address is at the limit already (the caller destroys
   * it). An admitted connection is uncounted when it closes.
   */
  admit(socket: Socket): boolean {
    const key = addressKey(socket.remoteAddress);
    const open = this.#open.get(key) ?? 0;
    if (open >= this.limit) return false;
    this.#open.set(key, open + 1);
    socket.once("close", () => {
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left <= 0) this.#open.delete(key);
      else this.#open.set(key, left);
    });
    return true;
  }

  /** The connections counted for an address's key. */
  openFor(address: string): number {
    return this.#open.get(addressKey(address)) ?? 0;
  }
}
