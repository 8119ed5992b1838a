/** Waits for something another process or socket will do soon: polls each millisecond, up to a bound. */
export async function eventually<T>(
  read: () => T | Promise<T>,
  what: string,
  timeoutMs = 2_000,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(1);
  }
}
