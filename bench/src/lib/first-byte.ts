import { request } from "node:http";

/** Whether a plain GET of `/` at host:port gets the first byte of an answer within 2 s. */
export function firstByte(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: "/", agent: false, timeout: 2000 }, (res) => {
      res.once("data", () => resolve(true));
      res.once("end", () => resolve(true));
      res.resume();
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}
