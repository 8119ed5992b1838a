/**
 * Wire timestamps for the benchmark: runs `tcpdump` on the loopback interface with a kernel filter
 * that keeps only TCP segments of given payload lengths leaving given ports, and returns when each
 * left (the kernel's clock, taken as the sender writes). Lets the benchmark time the server alone,
 * from the moment a message reaches its socket to the moment its answer leaves, without the load
 * generator's own event loop in the figure. Needs `tcpdump` and the right to capture (root).
 */

/** Segments to keep: TCP payloads of exactly `payloadBytes` sent from `sourcePort`. */
export interface WireMatch {
  sourcePort: number;
  payloadBytes: number;
}

export interface WirePacket {
  /** Seconds since the epoch, as tcpdump prints them (microsecond resolution). */
  at: number;
  sourcePort: number;
  payloadBytes: number;
}

export interface WireCapture {
  /** Stops capturing and returns every kept segment in capture order. */
  stop(): Promise<WirePacket[]>;
}

const TCP_PAYLOAD_LENGTH = "(ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2))";

/** tcpdump -q: `1795432577.238126 IP 127.0.0.1.43210 > 127.0.0.1.38123: tcp 32` */
const LINE = /^(\d+\.\d+) IP [\d.]+\.(\d+) > [\d.]+\.\d+: tcp (\d+)$/;

/** Starts capturing; resolves once tcpdump is listening. */
export async function captureLoopback(matches: WireMatch[]): Promise<WireCapture> {
  const filter = matches
    .map(
      ({ sourcePort, payloadBytes }) =>
        `(tcp src port ${sourcePort} and ${TCP_PAYLOAD_LENGTH} = ${payloadBytes})`,
    )
    .join(" or ");
  const tcpdump = Bun.spawn(
    [
      "tcpdump",
      "-i",
      "lo",
      "-n",
      "-q",
      "-tt",
      "-l",
      "--immediate-mode",
      "ip and tcp",
      "and",
      `(${filter})`,
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  const stderr = tcpdump.stderr.getReader();
  const decoder = new TextDecoder();
  let said = "";
  while (!said.includes("listening on")) {
    const { value, done } = await stderr.read();
    if (done)
      throw new Error(`tcpdump did not start: ${said.trim() || `exit ${await tcpdump.exited}`}`);
    said += decoder.decode(value, { stream: true });
  }
  stderr.releaseLock();
  const output = new Response(tcpdump.stdout).text();
  return {
    async stop() {
      tcpdump.kill("SIGINT");
      const packets: WirePacket[] = [];
      for (const line of (await output).split("\n")) {
        const match = LINE.exec(line.trim());
        if (match)
          packets.push({
            at: Number(match[1]),
            sourcePort: Number(match[2]),
            payloadBytes: Number(match[3]),
          });
      }
      return packets;
    },
  };
}
