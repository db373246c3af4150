"use client";
import { useEffect, useRef, useState } from "react";

/** What {@link usePoll} holds: the last good answer, and why the last poll failed, if it did. */
export interface Polled<T> {
  readonly data: T;
  readonly problem: string | undefined;
}

/**
 * Fetches a same-origin JSON `url` every `intervalMs` and keeps the last answer that `parse`
 * accepts (undefined means "not what was expected"). A failed poll keeps the last data, so a brief
 * outage does not blank the page, and says why. Polls wait for each other, so a slow answer never
 * piles up, and a hidden tab skips its polls, so a forgotten tab costs the box nothing.
 * @param parse must be stable across renders (a module-level function): the polling restarts when it changes.
 * @param intervalMs the wait before the next poll, or a function of the data held and of the time
 *   the page has been polling, ms (stable, like `parse`): a page can look often while something it
 *   shows is changing, and rarely once it is not.
 */
export function usePoll<T>(url: string, initial: T, parse: (json: unknown) => T | undefined, intervalMs: number | ((data: T, pollingMs: number) => number)): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ data: initial, problem: undefined });
  // The data the next wait is chosen by: the last good answer, read by the timer outside renders.
  const held = useRef(initial);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const since = Date.now();
    const wait = () => (typeof intervalMs === "number" ? intervalMs : intervalMs(held.current, Date.now() - since));
    const poll = async () => {
      if (document.visibilityState !== "hidden") {
        try {
          const response = await fetch(url, { cache: "no-store", headers: { accept: "application/json" }, signal: controller.signal });
          const json: unknown = await response.json().catch(() => undefined);
          const data = response.ok ? parse(json) : undefined;
          if (data !== undefined) {
            held.current = data;
            setState({ data, problem: undefined });
          }
          else {
            const problem = response.status === 401 ? "you are signed out; sign in again to see live updates" : `the panel answered ${response.status}${response.ok ? " with something unexpected" : ""}`;
            setState((before) => ({ data: before.data, problem }));
          }
        } catch {
          if (controller.signal.aborted) return;
          setState((before) => ({ data: before.data, problem: "the panel cannot be reached right now" }));
        }
      }
      if (!controller.signal.aborted) timer = setTimeout(() => void poll(), wait());
    };
    timer = setTimeout(() => void poll(), wait());
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [url, parse, intervalMs]);
  return state;
}
