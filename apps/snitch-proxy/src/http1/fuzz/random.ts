// A small seeded PRNG for the parser fuzz cases: the same seed gives the same cases on every
// machine and every Node version, so a failing case is reproduced from its seed and index alone.

/** A seeded pseudo-random source (mulberry32: 32 bits of state, fast, good enough for test data). */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * How hostile the case being generated is: 0 for a well-formed message, 1 for the full rate of
   * odd variations. `odd` scales by it.
   */
  hostility = 1;

  /** True with probability `p` scaled by the hostility: for a variation a clean case never has. */
  odd(p: number): boolean {
    return this.chance(p * this.hostility);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)] as T;
  }

  /** `text` with each letter's case flipped at random. */
  mixCase(text: string): string {
    let out = "";
    for (const c of text) out += this.chance(0.5) ? c.toUpperCase() : c.toLowerCase();
    return out;
  }

  /** `length` bytes, biased towards the ones that matter to framing (CR, LF, digits, ';'). */
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.chance(0.2) ? this.pick([13, 10, 48, 59, 0, 32]) : this.int(256);
    return out;
  }
}

/** The seed of case `index` of a run seeded with `seed`: each case can be replayed on its own. */
export function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
}
