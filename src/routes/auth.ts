/**
 * The guard of the bearer-secret endpoints, checked before a body is read:
 * - refuses cross-site browser requests that change state (`Sec-Fetch-Site`, else `Origin`), so a
 *   web page the operator visits cannot make the service place a call, whatever the mode;
 * - `Authorization: Bearer <ENDPOINT_SECRET>`, compared in constant time; a client that keeps
 *   presenting wrong secrets is throttled (429 + Retry-After);
 * - with no secret configured (only possible while Twilio is not configured), only direct loopback
 *   clients naming a loopback host are let in (a page that rebinds its own name to 127.0.0.1 names
 *   its own host), never requests relayed by a proxy, and the error says so.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import { AppError } from "../errors.ts";
import { isLoopbackHost } from "../loopback.ts";
import { requestOrigin } from "../request-url.ts";
import { limitedBody, MAX_BODY_BYTES, readJson } from "./body.ts";
import type { ClientAddresses } from "./client-address.ts";
import type { FailureThrottle } from "./throttle.ts";

export class UnauthorizedError extends AppError {
  constructor(message: string) {
    super(401, "UNAUTHORIZED", message);
  }
}

export class CrossSiteRequestError extends AppError {
  constructor(message: string) {
    super(403, "CROSS_SITE_REQUEST", message);
  }
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/** Constant-time comparison of a presented secret with the configured one (any lengths). */
export function secretMatches(presented: string, secret: string): boolean {
  return timingSafeEqual(digest(presented), digest(secret));
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** `Sec-Fetch-Site` values of requests a page of this service, or no page at all, made. */
const OWN_SITE = new Set(["same-origin", "none"]);

/** OpenAPI security requirement for routes behind the secret. */
export const BEARER_SECURITY = [{ bearerAuth: [] }];

export interface EndpointGuardOptions {
  secret: string | undefined;
  /** The public URL: a browser on it sends this Origin (the Host seen here may be a proxy's). */
  externalUrl: string | undefined;
  clients: ClientAddresses;
  throttle: FailureThrottle;
}

export class EndpointGuard {
  readonly #checked = new WeakSet<Request>();
  readonly #externalOrigin: string | undefined;

  constructor(private readonly options: EndpointGuardOptions) {
    this.#externalOrigin = options.externalUrl ? URL.parse(options.externalUrl)?.origin : undefined;
  }

  /** Throws 403, 429 or 401 unless the request may use a guarded endpoint; checks each request once. */
  authorize(request: Request, server: Bun.Server<unknown> | null): void {
    if (this.#checked.has(request)) return;
    const header = request.headers.get("authorization") ?? "";
    this.#check(request, server, header.startsWith("Bearer ") ? header.slice(7).trim() : "");
    this.#checked.add(request);
  }

  /**
   * The console's sign-in: the same rules as `authorize` (cross-site refused, throttled, constant
   * time, loopback only without a secret), for a secret presented in the request's body.
   */
  verifySecret(request: Request, server: Bun.Server<unknown> | null, presented: string): void {
    this.#check(request, server, presented);
  }

  /** Throws 403 for a state-changing request a page of another site made. */
  refuseCrossSite(request: Request): void {
    if (!SAFE_METHODS.has(request.method)) this.#refuseCrossSite(request);
  }

  #check(request: Request, server: Bun.Server<unknown> | null, presented: string): void {
    this.refuseCrossSite(request);
    const { secret, clients, throttle } = this.options;
    if (secret === undefined) {
      const relayed = request.headers.has("x-forwarded-for") || request.headers.has("forwarded");
      const hostname = URL.parse(request.url)?.hostname ?? "";
      if (
        relayed ||
        !isLoopback(server?.requestIP(request)?.address) ||
        !isLoopbackHost(hostname)
      ) {
        throw new UnauthorizedError(
          "ENDPOINT_SECRET is not set, so only local requests are accepted; set ENDPOINT_SECRET and send Authorization: Bearer <secret>",
        );
      }
      return;
    }
    const client = clients.of(request, server?.requestIP(request)?.address);
    throttle.check(client);
    if (!presented) throw new UnauthorizedError("Missing Authorization: Bearer <ENDPOINT_SECRET>");
    if (!secretMatches(presented, secret)) {
      throttle.fail(client);
      throw new UnauthorizedError("Wrong endpoint secret");
    }
  }

  #refuseCrossSite(request: Request): void {
    const fetchSite = request.headers.get("sec-fetch-site");
    if (fetchSite !== null) {
      if (OWN_SITE.has(fetchSite)) return;
      throw new CrossSiteRequestError(
        `Sec-Fetch-Site: ${fetchSite} requests may not change anything here`,
      );
    }
    const origin = request.headers.get("origin");
    if (origin === null) return; // not a browser, or a same-origin GET-style navigation
    const own = origin === requestOrigin(request) || origin === this.#externalOrigin;
    if (!own) throw new CrossSiteRequestError(`Origin ${origin} may not change anything here`);
  }
}

/** Puts a group of routes behind the guard; for GETs too, which have no body to read. */
export function endpointAuth(guard: EndpointGuard) {
  // No plugin name on purpose: Elysia de-duplicates named plugins, and each route group needs its own copy.
  return new Elysia().onBeforeHandle({ as: "scoped" }, ({ request, server }) =>
    guard.authorize(request, server),
  );
}

/** JSON bodies of guarded routes: the guard runs before a byte of the body is read. */
export function guardedJson(guard: EndpointGuard, limit = MAX_BODY_BYTES) {
  return limitedBody(
    (request) => readJson(request, limit),
    ({ request, server }) => guard.authorize(request, server),
  );
}
