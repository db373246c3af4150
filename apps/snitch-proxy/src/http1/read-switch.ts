import type { Socket } from "node:net";

/**
 * Pauses and resumes a socket's reading, for back-pressure. It remembers whether it paused:
 * `resume()` on a flowing stream still costs a scheduled tick, which a proxy calling it for every
 * request would notice.
 */
export class ReadSwitch {
  readonly #socket: Socket;
  #paused = false;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  pause(): void {
    if (!this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  resume(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
  }
}
