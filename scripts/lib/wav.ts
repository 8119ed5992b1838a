/** Minimal WAV reading and writing for 8 kHz telephone audio (mu-law or 16-bit PCM, mono). */
import { linearToMulaw } from "../../test/fakes/mulaw.ts";

/** Raw mu-law 8 kHz mono from a WAV file, or undefined when the file needs converting (e.g. with sox). */
export function wavToMulaw(file: Uint8Array): Buffer | undefined {
  const data = Buffer.from(file);
  if (data.toString("ascii", 0, 4) !== "RIFF" || data.toString("ascii", 8, 12) !== "WAVE")
    return undefined;
  let format = 0;
  let channels = 0;
  let sampleRate = 0;
  let bits = 0;
  for (let offset = 12; offset + 8 <= data.length; ) {
    const id = data.toString("ascii", offset, offset + 4);
    const size = data.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === "fmt ") {
      format = data.readUInt16LE(body);
      channels = data.readUInt16LE(body + 2);
      sampleRate = data.readUInt32LE(body + 4);
      bits = data.readUInt16LE(body + 14);
    } else if (id === "data") {
      if (channels !== 1 || sampleRate !== 8000) return undefined;
      const samples = data.subarray(body, body + size);
      if (format === 7 && bits === 8) return Buffer.from(samples);
      if (format === 1 && bits === 16) {
        const out = Buffer.alloc(samples.length / 2);
        for (let i = 0; i < out.length; i++) out[i] = linearToMulaw(samples.readInt16LE(i * 2));
        return out;
      }
      return undefined;
    }
    offset = body + size + (size % 2);
  }
  return undefined;
}

/** A WAV file (format 7, mu-law, 8 kHz mono) around raw mu-law bytes. */
export function mulawToWav(audio: Uint8Array): Buffer {
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + audio.length, 4);
  header.write("WAVE", 8, "ascii");
  header.write("fmt ", 12, "ascii");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(7, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(8000, 24);
  header.writeUInt32LE(8000, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.write("data", 36, "ascii");
  header.writeUInt32LE(audio.length, 40);
  return Buffer.concat([header, audio]);
}
