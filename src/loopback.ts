/** Host names that can only mean this machine: one definition for every check that trusts them. */

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|::1)$/i;

/** `localhost`, an address in 127.0.0.0/8, or `::1` (bracketed, as in a URL, or not). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOST.test(host);
}
