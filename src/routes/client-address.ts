/**
 * Who a request comes from: the peer's address, or, when the peer is a trusted reverse proxy
 * (TRUSTED_PROXIES), the first address in `X-Forwarded-For` that is not itself a trusted proxy,
 * read from the right (the end the proxies appended). Behind a local proxy every peer is 127.0.0.1,
 * so limits per client would otherwise count everyone as one client.
 */

/** `::ffff:1.2.3.4` and `1.2.3.4` are the same client. */
export function normalizeAddress(address: string): string {
  const trimmed = address.trim().toLowerCase();
  return trimmed.startsWith("::ffff:") && trimmed.includes(".") ? trimmed.slice(7) : trimmed;
}

/**
 * @param peer the TCP peer's address (undefined when the server cannot tell, e.g. in-process tests)
 * @example clientAddress("127.0.0.1", "203.0.113.9, 127.0.0.1", new Set(["127.0.0.1"])) // "203.0.113.9"
 */
export function clientAddress(
  peer: string | undefined,
  forwardedFor: string | null,
  trustedProxies: ReadonlySet<string>,
): string {
  const direct = normalizeAddress(peer ?? "unknown");
  if (!trustedProxies.has(direct) || !forwardedFor) return direct;
  const hops = forwardedFor.split(",").map(normalizeAddress).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!trustedProxies.has(hop)) return hop;
  }
  return hops[0] ?? direct;
}

/** Resolves the client of requests arriving on a server, with the configured trusted proxies. */
export class ClientAddresses {
  readonly #trusted: ReadonlySet<string>;

  constructor(trustedProxies: Iterable<string>) {
    this.#trusted = new Set([...trustedProxies].map(normalizeAddress));
  }

  /** @param peer the TCP peer's address, e.g. `server.requestIP(request)?.address` */
  of(request: Request, peer: string | undefined): string {
    return clientAddress(peer, request.headers.get("x-forwarded-for"), this.#trusted);
  }
}
