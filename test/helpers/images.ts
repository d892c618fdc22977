/** Image bytes for tests: real signatures, distinct contents. */
const sig = {
  png: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  jpeg: [0xff, 0xd8, 0xff, 0xe0],
  gif: [...Buffer.from('GIF89a')],
};

/** Bytes that sniff as the given type, `size` long, filled from `seed` so versions differ. */
export function imageBytes(type: keyof typeof sig, size = 2048, seed = 1): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 17) & 0xff;
  Buffer.from(sig[type]).copy(bytes);
  return bytes;
}

export const svgWithScript = Buffer.from(
  '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">' +
    '<script>alert(1)</script><rect width="10" height="10" fill="red"/></svg>',
);
