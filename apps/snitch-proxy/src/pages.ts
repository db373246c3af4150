/** The answers snitch-proxy gives itself, with the words a visitor sees. */
const PAGES = {
  400: { title: "Bad request", text: "The request could not be understood: it is malformed, or its Host header is missing or malformed." },
  404: { title: "No site here", text: "This server hosts no site at this address." },
  408: { title: "Request timeout", text: "The request took too long to arrive." },
  417: { title: "Expectation failed", text: "The request expects something this server does not do." },
  421: { title: "Misdirected request", text: "This connection was made for another site. Please retry." },
  431: { title: "Request headers too large", text: "The request's headers are larger than this server accepts." },
  502: { title: "Bad gateway", text: "The site is not answering right now. Please try again in a moment." },
  503: { title: "Service unavailable", text: "The site could not be started right now. Please try again in a moment." },
  504: { title: "Gateway timeout", text: "The site took too long to answer. Please try again in a moment." },
  505: { title: "HTTP version not supported", text: "This server speaks HTTP/1.0, HTTP/1.1 and HTTP/2." },
} as const;

/** A status snitch-proxy answers with a page of its own. */
export type PageStatus = keyof typeof PAGES;

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The HTML of an error page: the status, a sentence for the visitor, and the request id to quote
 * to the admin. No details of the upstream (addresses, errors) reach the visitor; they are logged.
 */
export function errorPage(status: PageStatus, requestId: string): string {
  const page = PAGES[status];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${status} ${page.title}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:15vh auto;padding:0 1em;color:#222}h1{font-size:1.6em}small{color:#777}</style>
</head><body><h1>${status} ${page.title}</h1><p>${page.text}</p><p><small>Request ${escape(requestId)}</small></p></body></html>
`;
}

/** The headers of an error page. */
export function errorHeaders(body: string, requestId: string): Record<string, string | number> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    "x-request-id": requestId,
  };
}
