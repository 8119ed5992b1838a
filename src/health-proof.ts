/**
 * Proof that a service answering `/health` holds ENDPOINT_SECRET, without the secret crossing the
 * wire: the client sends a fresh nonce, the service answers an HMAC of it keyed with the secret.
 * `voice-agent call` checks it before it sends the secret to a local port, which any local process
 * could be listening on while the service is down.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Longest nonce the service answers for (a client's 32 random bytes in hex is 64). */
export const MAX_NONCE_CHARS = 64;

/** The service's answer for `nonce` (domain-separated: it can answer for nothing else). */
export function healthProof(secret: string, nonce: string): string {
  return createHmac("sha256", secret).update(`voice-agent health proof\n${nonce}`).digest("hex");
}

/** A fresh nonce for one check. */
export function newNonce(): string {
  return randomBytes(32).toString("hex");
}

/** True when `proof` is the answer for `nonce` under `secret`. */
export function proofHolds(secret: string, nonce: string, proof: unknown): boolean {
  if (typeof proof !== "string") return false;
  const expected = Buffer.from(healthProof(secret, nonce));
  const given = Buffer.from(proof);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
