/**
 * The bare-sharp baseline of the variant-miss case, a process of its own (pinned like the
 * frontend): the same resize pixpool makes for a variant miss, on the same originals, with the
 * same concurrency, and nothing else (no HTTP, no pool).
 *
 *   node --import tsx bench/variant-resize.ts '{"dir":…,"count":n,"width":w,"format":"webp","concurrency":c}'
 *
 * Reads original-<i>.jpg for i < count from `dir`, resizes each once (after one untimed warm-up
 * resize), and prints one JSON line: wall ms, its own CPU seconds (in all and by thread kind), and
 * bytes out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { threadCpuSeconds, threadCpuSince } from './lib/threads.ts';

interface Options {
  dir: string;
  count: number;
  width: number;
  format: 'webp' | 'jpeg' | 'avif' | 'png';
  concurrency: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const originals = Array.from({ length: options.count }, (_, i) =>
  readFileSync(join(options.dir, `original-${i}.jpg`)),
);
// pixpool's transform: EXIF rotation, resize within the width without enlarging, encode.
const resize = (input: Buffer) =>
  sharp(input, { failOn: 'error' })
    .rotate()
    .resize({ width: options.width, fit: 'inside', withoutEnlargement: true })
    .toFormat(options.format)
    .toBuffer();

await resize(originals[0] as Buffer);
const cpu0 = process.cpuUsage();
const threads0 = threadCpuSeconds('self');
const t0 = performance.now();
let next = 0;
let bytes = 0;
await Promise.all(
  Array.from({ length: options.concurrency }, async () => {
    while (next < originals.length) {
      const input = originals[next++] as Buffer;
      // Not `bytes += await …`: that reads `bytes` before the wait, losing the other worker's.
      const out = await resize(input);
      bytes += out.length;
    }
  }),
);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const threads = threadCpuSince(threads0, threadCpuSeconds('self'));
console.log(JSON.stringify({ wallMs, cpuSec: (cpu.user + cpu.system) / 1e6, bytes, threads }));
