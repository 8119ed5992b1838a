/** The do-not-call list's routes, in-process: adding (JSON and CSV, bad rows reported), listing, removing, and /make-call refusing a listed number. */
import { expect, test } from "bun:test";
import type { CallPlacer } from "../../src/routes/make-call.ts";
import { INTEGRATIONS_ENV, testApp } from "../helpers/context.ts";
import { json } from "../helpers/http.ts";

const SECRET = "dnc-endpoint-secret-0123456789";
const placer: CallPlacer = {
  placeCall: async () => {
    throw new Error("a listed number must never be dialled");
  },
  hangUp: async () => {},
};

function build() {
  const built = testApp({ ...INTEGRATIONS_ENV, ENDPOINT_SECRET: SECRET }, placer);
  const request = (method: string, path: string, body?: string, type = "application/json") =>
    built.app.handle(
      new Request(`http://localhost${path}`, {
        method,
        headers: {
          authorization: `Bearer ${SECRET}`,
          ...(body === undefined ? {} : { "content-type": type }),
        },
        ...(body === undefined ? {} : { body }),
      }),
    );
  return { ...built, request };
}

test("numbers added by JSON and CSV, bad rows reported, listed, removed", async () => {
  const { request } = build();
  const added = await request(
    "POST",
    "/dnc",
    JSON.stringify({
      numbers: ["+15551230001", "555-0100", "+15551230002"],
      reason: "asked by email",
    }),
  );
  expect(added.status).toBe(200);
  expect(await json(added)).toEqual({
    added: 2,
    already: 0,
    rejected: [{ row: 2, number: "555-0100", reason: "not an E.164 number" }],
  });
  const csv = await request(
    "POST",
    "/dnc",
    'Number,Reason\r\n+15551230002,again\r\n+15551230003,"complained, twice"\r\nnot a number,x\r\n',
    "text/csv",
  );
  expect(await json(csv)).toEqual({
    added: 1,
    already: 1,
    rejected: [{ row: 3, number: "not a number", reason: "not an E.164 number" }],
  });
  const listed = await json(await request("GET", "/dnc"));
  expect(listed.numbers.map((entry: { number: string }) => entry.number).sort()).toEqual([
    "+15551230001",
    "+15551230002",
    "+15551230003",
  ]);
  expect(
    listed.numbers.find((entry: { number: string }) => entry.number === "+15551230003"),
  ).toMatchObject({
    reason: "complained, twice",
    source: "api",
  });
  expect((await request("DELETE", "/dnc/+15551230003")).status).toBe(204);
  expect((await request("DELETE", "/dnc/+15551230003")).status).toBe(404);
  expect((await request("DELETE", "/dnc/12345")).status).toBe(400);
  expect((await request("POST", "/dnc", "name\r\nBob\r\n", "text/csv")).status).toBe(400);
});

test("without the secret: 401, nothing read or changed", async () => {
  const { app } = build();
  const response = await app.handle(
    new Request("http://localhost/dnc", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ numbers: ["+15551230001"] }),
    }),
  );
  expect(response.status).toBe(401);
});

test("/make-call refuses a listed number with 409 and the reason, before dialling", async () => {
  const { request } = build();
  await request(
    "POST",
    "/dnc",
    JSON.stringify({ numbers: ["+15551230009"], reason: "lawyer's letter" }),
  );
  const refused = await request("POST", "/make-call", JSON.stringify({ to: "+15551230009" }));
  expect(refused.status).toBe(409);
  const body = await json(refused);
  expect(body.code).toBe("DO_NOT_CALL");
  expect(body.error).toStartWith("+15551230009 is on the do-not-call list (since ");
  expect(body.error).toContain("lawyer's letter");
});
