/** A stand-in for a running service's `GET /health` on loopback, as `setup --status` probes it. */

export interface IntegrationsReport {
  twilio: { configured: boolean; missing: string[] };
  deepgram: { configured: boolean; missing: string[] };
}

const EVERYTHING: IntegrationsReport = {
  twilio: { configured: true, missing: [] },
  deepgram: { configured: true, missing: [] },
};

/** Answers every request with a healthy `/health` reporting `integrations`; stop it when done. */
export function serveHealth(integrations: IntegrationsReport = EVERYTHING) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => Response.json({ status: "ok", integrations }),
  });
}
