// Reaching an installed box from the host, as a visitor on its network would: HTTPS with the box's
// hostname as SNI and Host, trusting only the box's own CA; plain HTTP; the certificate it serves.
import { createHash, X509Certificate } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request } from "node:https";
import { connect } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import type { Machine } from "./machine.ts";

/** What a GET answered. */
export interface Answer {
  readonly status: number;
  readonly location: string | undefined;
  /** The body, at most its first 200,000 characters. */
  readonly body: string;
}

/** A GET of `path` from the box at `address`, over HTTPS with `host` as SNI and Host, trusting only `ca`; 10 s deadline. */
export function getHttps(address: string, host: string, path: string, ca: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: 443, path, servername: host, headers: { host }, ca, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => {
        if (body.length < 200_000) body += chunk;
      });
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, body });
      });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** A GET of `path` over plain HTTP (port 80) with `host` as Host; 10 s deadline; the body is not read. */
export function getHttp(address: string, host: string, path: string): Promise<Omit<Answer, "body">> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: address, port: 80, path, headers: { host }, timeout: 10_000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * The base64 SHA-256 of the public key of the certificate the box serves for `host`, after Node
 * verified it against `ca` (what Chromium's `--ignore-certificate-errors-spki-list` pins).
 */
export function servedKeyPin(address: string, host: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port: 443, servername: host, ca, timeout: 10_000 }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.destroy();
      const spki = new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
      resolve(createHash("sha256").update(spki).digest("base64"));
    });
    socket.on("timeout", () => socket.destroy(new Error("timed out")));
    socket.on("error", reject);
  });
}

/** The text after `== <name> ` in a command's output (the install phase's markers). */
export function marker(output: string, name: string): string | undefined {
  return new RegExp(`^== ${name} (.*)$`, "m").exec(output)?.[1]?.trim();
}

/** What `coyote activation --json` prints. */
export interface Activation {
  readonly url: string;
  readonly token: string | null;
  readonly caFingerprint: string | null;
}

/** `coyote activation --json` on the box, asked until it names the CA, for `seconds` s at most. */
export async function activationOf(machine: Machine, seconds = 120): Promise<Activation | undefined> {
  let printed: Activation | undefined;
  for (const deadline = Date.now() + seconds * 1000; printed?.caFingerprint == null && Date.now() < deadline; ) {
    const text = await machine.exec(["coyote", "activation", "--json"], { timeoutMs: 30_000 }).catch(() => "");
    if (text.trim().startsWith("{")) printed = JSON.parse(text) as Activation;
    if (printed?.caFingerprint == null) await sleep(1000);
  }
  return printed;
}

/** GETs `path` until it answers 200, for `seconds` s at most; the last answer, or undefined when none came. */
export async function pageOf(machine: Machine, host: string, path: string, ca: string, seconds = 120): Promise<Answer | undefined> {
  let page: Answer | undefined;
  for (const deadline = Date.now() + seconds * 1000; page?.status !== 200 && Date.now() < deadline; ) {
    page = await getHttps(machine.address, host, path, ca).catch(() => undefined);
    if (page?.status !== 200) await sleep(1000);
  }
  return page;
}
