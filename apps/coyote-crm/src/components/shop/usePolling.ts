"use client";
import { useEffect, useState } from "react";

/** What {@link usePolling} holds: the last good answer, and why the last poll failed, if it did. */
export interface Polled<T> {
  readonly data: T;
  readonly problem: string | undefined;
}

/**
 * Fetches `url` every `intervalMs` and keeps the last answer that `parse` accepts. A failed poll
 * keeps the last data (the page stays readable) and says why; a hidden tab skips its polls so
 * that a forgotten tab costs the box nothing.
 * @param url a same-origin JSON endpoint.
 * @param initial the server-rendered data, shown until the first poll answers.
 * @param parse checks an answer's shape; undefined means "not what was expected".
 * @param intervalMs the time between polls.
 */
export function usePolling<T>(url: string, initial: T, parse: (json: unknown) => T | undefined, intervalMs: number): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ data: initial, problem: undefined });
  useEffect(() => {
    let stopped = false;
    let controller: AbortController | undefined;
    const poll = async () => {
      if (document.visibilityState === "hidden") return;
      controller?.abort();
      controller = new AbortController();
      try {
        const response = await fetch(url, { cache: "no-store", headers: { accept: "application/json" }, signal: controller.signal });
        const json: unknown = await response.json().catch(() => undefined);
        if (stopped) return;
        const data = response.ok ? parse(json) : undefined;
        if (data === undefined) {
          const reason = response.status === 401 ? "you are signed out; sign in again to see live updates" : `the panel answered ${response.status}`;
          setState((before) => ({ data: before.data, problem: reason }));
          return;
        }
        setState({ data, problem: undefined });
      } catch (error) {
        if (stopped || (error instanceof DOMException && error.name === "AbortError")) return;
        setState((before) => ({ data: before.data, problem: "the panel cannot be reached right now" }));
      }
    };
    const timer = setInterval(() => void poll(), intervalMs);
    return () => {
      stopped = true;
      clearInterval(timer);
      controller?.abort();
    };
  }, [url, parse, intervalMs]);
  return state;
}
