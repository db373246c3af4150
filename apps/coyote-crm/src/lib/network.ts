import { isIPv4, isIPv6 } from "node:net";

function hextets(address: string): number[] | undefined {
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes its two hextets first.
  let text = address;
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (v4 !== null) {
    const bytes = (v4[2] ?? "").split(".").map(Number);
    text = `${v4[1] ?? ""}${(((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0)).toString(16)}:${(((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const part = (s: string) => (s === "" ? [] : s.split(":").map((h) => parseInt(h, 16)));
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  return [...left, ...Array<number>(fill).fill(0), ...right];
}

/**
 * The key a client address is limited by: an IPv4 address as is, an IPv6 address by its /64 (one
 * subscriber usually gets a whole /64, so per-address limits would be per-/128 and worthless), an
 * IPv4-mapped IPv6 address as its IPv4 address. Anything else (no address) is one shared key.
 */
export function clientNetwork(address: string): string {
  const bare = address.replace(/%.*$/, "");
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return "unknown";
  const h = hextets(bare.toLowerCase());
  if (h === undefined) return "unknown";
  if (h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff) {
    const [a = 0, b = 0] = h.slice(6);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  return `${h.slice(0, 4).map((x) => x.toString(16)).join(":")}::/64`;
}
