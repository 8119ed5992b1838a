/**
 * Who a request comes from: the peer's address, or, when the peer is a trusted reverse proxy
 * (TRUSTED_PROXIES), the first address in `X-Forwarded-For` that is not itself a trusted proxy,
 * read from the right (the end the proxies appended). Behind a local proxy every peer is 127.0.0.1,
 * so limits per client would otherwise count everyone as one client. For limits, an IPv6 client is
 * its /64: one host usually has a whole /64 to rotate through.
 */
import { isIPv6 } from "node:net";
import type { Logger } from "../log.ts";

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

/**
 * The key per-client limits count under: the address itself, or an IPv6 address's /64.
 * @example limitKey("2001:db8:1:2:aaaa::1") // "2001:db8:1:2::/64"
 */
export function limitKey(address: string): string {
  const bare = address.split("%")[0] ?? address;
  if (!isIPv6(bare)) return address;
  const [head = "", tail] = bare.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array(missing).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(":")}::/64`;
}

/** Resolves the client of requests arriving on a server, with the configured trusted proxies. */
export class ClientAddresses {
  readonly #trusted: ReadonlySet<string>;
  #warned = false;

  constructor(
    trustedProxies: Iterable<string>,
    private readonly logger?: Logger,
  ) {
    this.#trusted = new Set([...trustedProxies].map(normalizeAddress));
  }

  /**
   * The key the request's client is limited under.
   * @param peer the TCP peer's address, e.g. `server.requestIP(request)?.address`
   */
  of(request: Request, peer: string | undefined): string {
    const forwardedFor = request.headers.get("x-forwarded-for");
    if (forwardedFor && this.#trusted.size === 0) this.#warnOnce(peer);
    return limitKey(clientAddress(peer, forwardedFor, this.#trusted));
  }

  /** A local proxy is relaying but is not trusted: every client behind it counts as one. */
  #warnOnce(peer: string | undefined): void {
    if (this.#warned || !peer || !/^(127\.|::1$|::ffff:127\.)/.test(peer)) return;
    this.#warned = true;
    this.logger?.warn(
      "a local proxy forwards requests (X-Forwarded-For) but TRUSTED_PROXIES is not set: every client behind it counts as one for the per-client limits; set TRUSTED_PROXIES=127.0.0.1",
    );
  }
}
