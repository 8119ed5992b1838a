/** `POST /leads/import`, in-process: JSON and CSV, bad rows reported with field and reason, duplicates by phone kept out. */
import { expect, test } from "bun:test";
import { testApp } from "../helpers/context.ts";
import { json } from "../helpers/http.ts";

const SECRET = "lead-import-secret-0123456789";

function build() {
  const built = testApp({ ENDPOINT_SECRET: SECRET });
  const post = (body: string, type: string) =>
    built.app.handle(
      new Request("http://localhost/leads/import", {
        method: "POST",
        headers: { authorization: `Bearer ${SECRET}`, "content-type": type },
        body,
      }),
    );
  return { ...built, post };
}

test("a CSV: stored rows, bad rows with field and reason, duplicates not stored twice", async () => {
  const { post, store } = build();
  await store.leads.create({ first_name: "Old", last_name: "Lead", phone: "+15551230001" });
  const csv = [
    "First_Name,last_name,phone,year_built,timezone,email",
    "Ada,Lovelace,+15551230002,1990,Europe/London,ada@example.com",
    "Bob,Byrne,+15551230001,,,",
    "Cy,Cole,555-0100,,,",
    "Di,Dunn,+15551230003,nineteen,,",
    "Ed,Eve,+15551230004,,Mars/Olympus,",
    "Flo,Fay,+15551230002,,,",
    '"Gus, Jr.",Gray,,2001,America/Chicago,',
  ].join("\r\n");
  const response = await post(csv, "text/csv");
  expect(response.status).toBe(200);
  const result = await json(response);
  expect(result.stored.map((entry: { row: number }) => entry.row)).toEqual([1, 7]);
  expect(result.duplicates).toEqual([
    { row: 2, phone: "+15551230001" },
    { row: 6, phone: "+15551230002" },
  ]);
  expect(
    result.rejected.map((entry: { row: number; field: string }) => [entry.row, entry.field]),
  ).toEqual([
    [3, "phone"],
    [4, "year_built"],
    [5, "timezone"],
  ]);
  const ada = await store.leads.get(result.stored[0].id);
  expect(ada).toMatchObject({
    first_name: "Ada",
    year_built: 1990,
    timezone: "Europe/London",
    email: "ada@example.com",
  });
  expect((await store.leads.get(result.stored[1].id))?.first_name).toBe("Gus, Jr.");
});

test("a JSON array alike; a body that is neither is a 400 naming it", async () => {
  const { post } = build();
  const result = await json(
    await post(
      JSON.stringify([
        { first_name: "Hal", last_name: "Hill", phone: "+15551230010" },
        { first_name: "", last_name: "Nobody" },
      ]),
      "application/json",
    ),
  );
  expect(result.stored).toHaveLength(1);
  expect(result.rejected).toEqual([{ row: 2, field: "first_name", reason: expect.any(String) }]);
  const wrong = await post(JSON.stringify({ first_name: "Solo" }), "application/json");
  expect(wrong.status).toBe(400);
  expect((await json(wrong)).error).toStartWith("body: expected a JSON array");
  const noNames = await post("phone\r\n+15551230011\r\n", "text/csv");
  expect(noNames.status).toBe(400);
});
