/**
 * The endpoint secret: `Authorization: Bearer <ENDPOINT_SECRET>`, compared in constant time. With no
 * secret configured only direct loopback clients are let in (never requests relayed by a proxy), and
 * the error says so.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import { AppError } from "../errors.ts";

export class UnauthorizedError extends AppError {
  constructor(message: string) {
    super(401, "UNAUTHORIZED", message);
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

/** OpenAPI security requirement for routes behind the secret. */
export const BEARER_SECURITY = [{ bearerAuth: [] }];

export function endpointAuth(secret: string | undefined) {
  // No plugin name on purpose: Elysia de-duplicates named plugins, and each route group needs its own copy.
  return new Elysia().onBeforeHandle({ as: "scoped" }, ({ request, server }) => {
    if (secret === undefined) {
      const relayed = request.headers.has("x-forwarded-for") || request.headers.has("forwarded");
      if (!relayed && isLoopback(server?.requestIP(request)?.address)) return;
      throw new UnauthorizedError(
        "ENDPOINT_SECRET is not set, so only local requests are accepted; set ENDPOINT_SECRET and send Authorization: Bearer <secret>",
      );
    }
    const header = request.headers.get("authorization") ?? "";
    const presented = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    if (!presented) throw new UnauthorizedError("Missing Authorization: Bearer <ENDPOINT_SECRET>");
    if (!secretMatches(presented, secret)) throw new UnauthorizedError("Wrong endpoint secret");
  });
}
