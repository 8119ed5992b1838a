/** Reading a child voice-agent's JSON log until it says where it listens. */

/**
 * Resolves with the URL of the child's "listening" log line. Keeps draining stdout for the child's
 * whole life: a pipe closed early would kill the child with EPIPE at its next log line.
 */
export function listeningUrl(
  stdout: ReadableStream<Uint8Array>,
  describeExit: () => Promise<string>,
): Promise<string> {
  const listening = Promise.withResolvers<string>();
  (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stdout) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const entry = line.startsWith("{") ? JSON.parse(line) : {};
        if (entry.msg === "listening") listening.resolve(entry.url);
      }
    }
    listening.reject(new Error(`voice-agent exited before listening: ${await describeExit()}`));
  })();
  return listening.promise;
}
