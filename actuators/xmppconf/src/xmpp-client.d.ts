// The part of @xmpp/client (which ships no type declarations) that the tests use (this package's
// and the integration tests', which include this file).
declare module "@xmpp/client" {
  import type { EventEmitter } from "node:events";

  /** An XML element (ltx). */
  export interface Element {
    readonly name: string;
    readonly attrs: Record<string, string>;
    /** Whether it is an element of this name. */
    is(name: string): boolean;
    /** The text of its first child of this name, or null. */
    getChildText(name: string): string | null;
    /** Its first child of this name (and namespace, when given), or undefined. */
    getChild(name: string, xmlns?: string): Element | undefined;
    /** Its children of this name. */
    getChildren(name: string): Element[];
    /** Its text. */
    text(): string;
    toString(): string;
  }

  /** Makes an XML element. */
  export function xml(name: string, attrs?: Record<string, string>, ...children: (Element | string)[]): Element;

  /** Credentials, or a function that picks the SASL mechanism itself. */
  export type Credentials =
    | { username: string; password: string }
    | ((authenticate: (credentials: { username: string; password: string }, mechanism: string) => Promise<void>, mechanisms: string[]) => Promise<void>);

  /** Options of {@link client}. */
  export interface ClientOptions {
    service: string;
    domain: string;
    resource?: string;
    username?: string;
    password?: string;
    credentials?: Credentials;
    timeout?: number;
  }

  /** A client connection. */
  export interface Client extends EventEmitter {
    readonly status: string;
    start(): Promise<{ toString(): string }>;
    /** Sends a stanza. */
    send(element: Element): Promise<void>;
    stop(): Promise<unknown>;
    readonly reconnect: { stop(): void };
    readonly iqCaller: { request(element: Element, timeout?: number): Promise<Element> };
    /** The SASL mechanisms the client knows; `use` adds one, which the client then prefers last. */
    readonly saslFactory: { use(name: string, mechanism: new () => unknown): unknown };
  }

  /** Makes a client. */
  export function client(options: ClientOptions): Client;
}
