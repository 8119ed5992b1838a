/** G.711 mu-law helpers for fakes and scripts: make audible test audio without a file. */

const BIAS = 0x84;
const CLIP = 32635;

/** Encodes one 16-bit linear PCM sample as a mu-law byte. */
export function linearToMulaw(sample: number): number {
  const sign = sample < 0 ? 0x80 : 0;
  let magnitude = Math.min(Math.abs(sample), CLIP) + BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  magnitude = ~(sign | (exponent << 4) | mantissa);
  return magnitude & 0xff;
}

/** `ms` of a sine tone as mu-law 8 kHz bytes (8 bytes a millisecond). */
export function mulawTone(ms: number, frequency = 440, amplitude = 8000): Buffer {
  const samples = Math.round(ms * 8);
  const audio = Buffer.alloc(samples);
  for (let i = 0; i < samples; i++) {
    audio[i] = linearToMulaw(
      Math.round(amplitude * Math.sin((2 * Math.PI * frequency * i) / 8000)),
    );
  }
  return audio;
}

/** `ms` of mu-law silence. */
export function mulawSilence(ms: number): Buffer {
  return Buffer.alloc(Math.round(ms * 8), 0xff);
}
