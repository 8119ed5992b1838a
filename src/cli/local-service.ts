/** Where a command on this machine reaches the service its settings describe. */

/**
 * The service's URL on this machine from SERVER_HOST and SERVER_PORT (defaults 0.0.0.0 and 8080):
 * a wildcard host is reached on 127.0.0.1, an IPv6 address in brackets.
 * @example localServiceUrl(() => undefined) // "http://127.0.0.1:8080"
 */
export function localServiceUrl(setting: (name: string) => string | undefined): string {
  const configured = setting("SERVER_HOST") || "0.0.0.0";
  const port = setting("SERVER_PORT") || "8080";
  const host = ["0.0.0.0", "::", "[::]"].includes(configured) ? "127.0.0.1" : configured;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}
