/** `once`: the first call's work is shared by every later call, and a failure is not kept. */
import { expect, test } from "bun:test";
import { once } from "../src/lazy.ts";

test("made once and shared; a failed attempt is tried again next time", async () => {
  let attempts = 0;
  const get = once(async () => {
    attempts += 1;
    if (attempts === 1) throw new Error("the first import failed");
    return { made: attempts };
  });
  await expect(get()).rejects.toThrow("the first import failed");
  const [a, b] = await Promise.all([get(), get()]);
  expect(a).toBe(b);
  expect(await get()).toEqual({ made: 2 });
  expect(attempts).toBe(2);
});
