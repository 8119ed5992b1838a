/**
 * A request's path and origin, read safely: Bun accepts Host headers (`a"b`) that leave
 * `request.url` unparsable, and one such request must not throw where every request passes.
 */

/** The request's path (no query), from its URL even when a strange Host header broke it. */
export function requestPath(request: Request): string {
  if (URL.canParse(request.url)) return new URL(request.url).pathname;
  // Bun then gives the request target alone ("/calls?x=1").
  return URL.canParse(request.url, "http://unparsable.invalid")
    ? new URL(request.url, "http://unparsable.invalid").pathname
    : "/";
}

/** The request's origin, or undefined when its Host header made its URL unparsable. */
export function requestOrigin(request: Request): string | undefined {
  return URL.canParse(request.url) ? new URL(request.url).origin : undefined;
}
