/** `voice-agent leads import FILE.csv` against the real service: rows sent in pieces, the file's row numbers reported. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { runLeadsCommand } from "../../src/cli/leads.ts";
import { SECRET, type SignedService, startSignedService } from "../helpers/signed-service.ts";

let running: SignedService;
beforeAll(async () => {
  running = await startSignedService();
});
afterAll(() => running.stop());

async function run(csv: string, argv: string[] = []) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runLeadsCommand(
    ["import", "leads.csv", "--server", running.service.url, "--secret", SECRET, ...argv],
    {},
    { out: (line) => out.push(line), err: (line) => err.push(line), readFile: async () => csv },
  );
  return { code, out, err };
}

test("a large file goes in pieces under the body limit; rows keep the file's numbers", async () => {
  const rows = Array.from(
    { length: 1500 },
    (_, index) =>
      `Lead${index},Number${index},+1555${String(1_000_000 + index).slice(1)},"${index} Long Street Name, Springfield, IL 62704"`,
  );
  rows[1199] = "Bad,Row,not-a-number,";
  rows[1299] = rows[3] as string;
  const csv = ["first_name,last_name,phone,property_address", ...rows].join("\n");
  const { code, out, err } = await run(csv);
  expect(code).toBe(1);
  expect(out[0]).toBe(`via ${running.service.url} (--server)`);
  expect(out[1]).toBe("stored 1498, already leads 1, rejected 1");
  expect(out).toContain("row 1300: +1555000003 is already a lead's number; not stored again");
  expect(err).toEqual(["row 1200: phone: expected e.164"]);
  expect((await running.service.store.leads.list(5)).length).toBe(5);
});

test("usage, an unreadable file, a wrong secret", async () => {
  const usage = await runLeadsCommand(
    ["export"],
    {},
    {
      out: () => {},
      err: () => {},
      readFile: async () => "",
    },
  );
  expect(usage).toBe(64);
  const wrong = await run("first_name,last_name\nA,B\n", ["--secret", "not-the-secret"]);
  expect(wrong.code).toBe(77);
  expect(wrong.err[0]).toContain("refused the rows from 1 on (401): Wrong endpoint secret");
});
