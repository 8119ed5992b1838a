/**
 * The console's sign-in sessions: `POST /console/login` with the endpoint secret gives the browser
 * a `va_session` cookie (HttpOnly, SameSite=Strict, Secure when the public URL is https, 12 hours).
 * The database keeps only the cookie's SHA-256 and its expiry, shared by every instance, so the
 * cookie works on any of them and signing out ends it on all. The secret itself never reaches the
 * browser's storage or a URL.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { SessionStore } from "../store/port.ts";

export const SESSION_COOKIE = "va_session";
export const SESSION_MS = 12 * 3_600_000;

const hashOf = (token: string) => createHash("sha256").update(token).digest("hex");

/** The value of cookie `name` in a request's Cookie header. */
export function cookieValue(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

export class ConsoleSessions {
  constructor(
    private readonly store: SessionStore,
    private readonly clock: Clock,
    /** The public URL is https: the cookie is sent over https only. */
    private readonly secure: boolean,
  ) {}

  /** A new session; returns its Set-Cookie header. */
  async start(): Promise<string> {
    const token = randomBytes(32).toString("base64url");
    const now = this.clock.now();
    await this.store.create(
      hashOf(token),
      new Date(now.getTime() + SESSION_MS).toISOString(),
      now.toISOString(),
    );
    return this.#cookie(token, SESSION_MS / 1000);
  }

  /** Whether the request carries a session that has not expired or been ended. */
  async valid(request: Request): Promise<boolean> {
    const token = cookieValue(request, SESSION_COOKIE);
    if (!token || token.length > 100) return false;
    return this.store.active(hashOf(token), this.clock.now().toISOString());
  }

  /** Ends the request's session (everywhere); returns the Set-Cookie header that clears it. */
  async end(request: Request): Promise<string> {
    const token = cookieValue(request, SESSION_COOKIE);
    if (token) await this.store.end(hashOf(token));
    return this.#cookie("", 0);
  }

  #cookie(value: string, maxAgeS: number): string {
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${this.secure ? "; Secure" : ""}`;
  }
}
