/**
 * Recognises image types by their first bytes, never by a file name or a declared type.
 *
 * Covers what pixpool accepts: PNG, JPEG, GIF, WebP, BMP and SVG. SVG is text, so it is recognised
 * by an `<svg` root element near the start (after an optional BOM, XML prolog, comments and
 * doctype); anything else returns undefined.
 */

export type ImageType =
  | 'image/png'
  | 'image/jpeg'
  | 'image/gif'
  | 'image/webp'
  | 'image/bmp'
  | 'image/svg+xml';

const startsWith = (b: Uint8Array, bytes: number[], at = 0) =>
  b.length >= at + bytes.length && bytes.every((x, i) => b[at + i] === x);

const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const GIF87 = ascii('GIF87a');
const GIF89 = ascii('GIF89a');
const RIFF = ascii('RIFF');
const WEBP = ascii('WEBP');
const BM = ascii('BM');

// Prolog, comments and doctype may precede the root element; 4 KiB is plenty for real files.
const SVG_SNIFF_BYTES = 4096;
const svgRoot =
  /^(?:\uFEFF)?\s*(?:<\?xml[^>]*\?>\s*)?(?:(?:<!--[\s\S]*?-->|<!DOCTYPE[^>]*>)\s*)*<svg[\s>]/i;

export function sniffImageType(bytes: Uint8Array): ImageType | undefined {
  if (startsWith(bytes, PNG)) return 'image/png';
  if (startsWith(bytes, JPEG)) return 'image/jpeg';
  if (startsWith(bytes, GIF87) || startsWith(bytes, GIF89)) return 'image/gif';
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return 'image/webp';
  // A BMP header is 14 bytes and the DIB header size that follows is one of a few known values.
  if (startsWith(bytes, BM) && bytes.length >= 26) {
    const dib = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).readUInt32LE(14);
    if ([12, 40, 52, 56, 64, 108, 124].includes(dib)) return 'image/bmp';
  }
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, SVG_SNIFF_BYTES));
  if (svgRoot.test(head.toString('utf8'))) return 'image/svg+xml';
  return undefined;
}
