/**
 * Requests that got no answer, in words: which part of the network failed (DNS, a refused
 * connection, a time-out, TLS) rather than the runtime's own wording, so a person can tell a
 * network problem from a refusal.
 */

/**
 * Why a request got no answer, in words that say it was the network (DNS, a refused connection,
 * a time-out, TLS), not the credentials.
 */
export function describeNetworkError(error: unknown, target: string, timeoutMs: number): string {
  const { name, code, message } = error as { name?: string; code?: string; message?: string };
  const url = URL.canParse(target) ? new URL(target) : undefined;
  const origin = url?.origin ?? target;
  const host = url?.hostname ?? target;
  if (name === "TimeoutError" || code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT")
    return `no answer from ${origin} within ${timeoutMs / 1000} s (time-out)`;
  if (code && /^(ENOTFOUND|EAI_AGAIN|EAI_NONAME|EAI_FAIL|DNSException)$/.test(code))
    return `the name ${host} could not be resolved (DNS: ${code})`;
  if (code === "ECONNREFUSED" || code === "ConnectionRefused")
    return `${origin} refused the connection (${code})`;
  if (code === "ECONNRESET" || code === "ConnectionClosed")
    return `the connection to ${origin} was closed before an answer (${code})`;
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH")
    return `no route to ${host} (${code}): is this machine online?`;
  if (code && /CERT|TLS|SSL|SELF_SIGNED/i.test(code))
    return `the TLS certificate of ${host} was not accepted (${code})`;
  return `${origin}: ${message ?? String(error)}${code ? ` (${code})` : ""}`;
}
