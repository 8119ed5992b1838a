/** The one way the commands find the service on this machine from its settings. */
import { expect, test } from "bun:test";
import { localServiceUrl } from "../../src/cli/local-service.ts";

test("a wildcard host is reached on loopback, IPv6 in brackets, a chosen host as it is", () => {
  const url = (settings: Record<string, string>) => localServiceUrl((name) => settings[name]);
  expect(url({})).toBe("http://127.0.0.1:8080");
  expect(url({ SERVER_HOST: "::", SERVER_PORT: "9000" })).toBe("http://127.0.0.1:9000");
  expect(url({ SERVER_HOST: "::1" })).toBe("http://[::1]:8080");
  expect(url({ SERVER_HOST: "10.0.0.5", SERVER_PORT: "8081" })).toBe("http://10.0.0.5:8081");
});
