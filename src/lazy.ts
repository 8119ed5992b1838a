/**
 * Work done on first need and shared after: start-up loads only what serving needs, and the rest
 * (the twilio SDK, the docs plugin) when a request first asks for it.
 */

/**
 * `make` run on the first call, its promise shared by every later one; a failure is not kept, so
 * the next call tries again.
 */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make().catch((error: unknown) => {
      made = undefined;
      throw error;
    });
    return made;
  };
}
