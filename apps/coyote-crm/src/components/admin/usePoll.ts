"use client";
import { useEffect, useState } from "react";
import type { z } from "zod";
import { POLL_INTERVAL_MS } from "../../lib/admin/live.ts";

/**
 * Asks a JSON URL again every `intervalMs` and keeps its last good answer (validated by `schema`).
 * A failed poll keeps what is shown and reports why, so that a brief outage does not blank the
 * page; the next poll tries again. Polls wait for each other, so a slow answer never piles up.
 */
export function usePoll<T>(url: string, schema: z.ZodType<T>, initial: T, intervalMs = POLL_INTERVAL_MS): { data: T; error: string | undefined } {
  const [data, setData] = useState<T>(initial);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const response = await fetch(url, { cache: "no-store", headers: { accept: "application/json" }, signal: controller.signal });
        if (!response.ok) throw new Error(`${url} answered ${response.status}`);
        const parsed = schema.safeParse(await response.json());
        if (!parsed.success) throw new Error(`${url} answered something unexpected`);
        setData(parsed.data);
        setError(undefined);
      } catch (cause) {
        if (controller.signal.aborted) return;
        setError(cause instanceof Error ? cause.message : String(cause));
      }
      if (!controller.signal.aborted) timer = setTimeout(() => void poll(), intervalMs);
    };
    timer = setTimeout(() => void poll(), intervalMs);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [url, schema, intervalMs]);
  return { data, error };
}
