/** `bun run demo` runs the simulated outbound flow and prints what the service stored. */
import { expect, test } from "bun:test";
import { resolve } from "node:path";

test("the demo places a booked call and a voicemail call, clearly simulated", async () => {
  const child = Bun.spawn([process.execPath, "run", "scripts/demo.ts"], {
    cwd: resolve(import.meta.dir, "../.."),
    env: { PATH: process.env.PATH ?? "" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  expect(err).toBe("");
  expect(code).toBe(0);
  expect(out).toStartWith("SIMULATED CALLS");
  expect(out).toContain(
    "agent : Hi, this is Sarah, an AI assistant calling on behalf of Prestige Home Insurance.",
  );
  expect(out).toContain("↳ book_appointment(");
  expect(out).toContain("outcome: appointment_booked");
  expect(out).toContain("outcome: no_answer_voicemail_left");
  expect(out).not.toContain("barge_in");
}, 60_000);
