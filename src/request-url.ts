/**
 * A request's URL, read safely: Bun accepts Host headers (`a"b`) that leave `request.url`
 * unparsable (it is then the request target alone, "/calls?x=1"), and one such request must not
 * throw where every request passes.
 */

/** Where the target of a request with an unusable Host header is placed. */
const PLACEHOLDER_ORIGIN = "http://unparsable.invalid";

/** The request's URL; with a Host header that broke it, its path and query on a placeholder host. */
export function requestUrl(request: Request): URL {
  return (
    URL.parse(request.url) ??
    URL.parse(request.url, PLACEHOLDER_ORIGIN) ??
    new URL("/", PLACEHOLDER_ORIGIN)
  );
}

/** The request's origin, or undefined when its Host header made its URL unparsable. */
export function requestOrigin(request: Request): string | undefined {
  return URL.parse(request.url)?.origin;
}
