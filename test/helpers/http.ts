/** Reads a response body as JSON for assertions (tests inspect shapes the assertions spell out). */
// biome-ignore lint/suspicious/noExplicitAny: test assertions check the shape themselves
export async function json(response: Response): Promise<any> {
  return response.json();
}
