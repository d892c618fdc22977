/**
 * Image variants: what `GET /images/:key?w=…&h=…&fit=…&format=…&q=…` asks for, validated and
 * brought to a canonical form, so that two requests for the same output share one cache entry
 * and one resize.
 *
 * Sizes are rounded up to an allowlist (configurable) and qualities up to a multiple of 5, so the
 * number of variants a key can have is bounded: nobody can fill the pool with one variant per
 * pixel. A variant never upscales (a 300 px wide original asked at 1024 stays 300 px wide).
 */
import { badRequest } from '../../core/errors.ts';

export const FITS = ['cover', 'contain', 'inside'] as const;
export type Fit = (typeof FITS)[number];
export const OUTPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The widths and heights a variant may have unless configured otherwise (px). */
export const DEFAULT_SIZES: readonly number[] = [
  32, 64, 128, 256, 320, 480, 640, 800, 1024, 1280, 1600, 1920, 2560,
];
const QUALITY_STEP = 5;
/** Pixels of the largest original a variant is made from, unless configured otherwise. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

export interface VariantSpec {
  /** Allowed sizes, px; neither: the original's size (a change of format or quality only). */
  width: number | undefined;
  height: number | undefined;
  /** With both sizes: how the image fills the box. With one, the image keeps its proportions. */
  fit: Fit;
  /** Undefined: the original's format (PNG for SVG and BMP), or `auto`'s choice. */
  format: OutputFormat | undefined;
  /** 1–100, a multiple of 5; undefined: the encoder's default. */
  quality: number | undefined;
  /**
   * `format=auto`: the modern formats the Accept header takes. The transform picks AVIF, then
   * WebP, else keeps the original's format (an animation becomes WebP or stays a GIF); the
   * answer varies on Accept.
   */
  auto: { avif: boolean; webp: boolean } | undefined;
}

/** `v` is a cache-buster (pages add the image's version): any short value, ignored. */
const PARAMS = ['w', 'h', 'fit', 'format', 'q', 'v'] as const;
const MAX_BUSTER_LENGTH = 64;

/**
 * The variant a query asks for, or undefined for the original (no query). Throws a 400 naming
 * the first thing wrong. `query` is the raw query string (without `?`); `accept` the request's
 * Accept header, for `format=auto`.
 */
export function parseVariant(
  query: string,
  accept: string | undefined,
  sizes: readonly number[] = DEFAULT_SIZES,
): VariantSpec | undefined {
  if (query === '') return undefined;
  const params = new URLSearchParams(query);
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (!(PARAMS as readonly string[]).includes(name)) {
      throw badRequest(
        `Unknown image parameter ${JSON.stringify(name)}: use w, h, fit, format and q (and v, ignored, to bust a cache).`,
      );
    }
    if (seen.has(name)) throw badRequest(`The image parameter ${name} is given twice.`);
    seen.set(name, value);
  }
  const buster = seen.get('v');
  if (buster !== undefined && buster.length > MAX_BUSTER_LENGTH) {
    throw badRequest(`v (a cache-buster) may be at most ${MAX_BUSTER_LENGTH} characters.`);
  }
  seen.delete('v');
  if (seen.size === 0) return undefined;
  const width = size(seen.get('w'), 'w', 'width', sizes);
  const height = size(seen.get('h'), 'h', 'height', sizes);
  if (width === undefined && height === undefined) {
    if (seen.has('fit')) throw badRequest('fit needs a width (w) and a height (h).');
  }
  const fitValue = seen.get('fit');
  if (fitValue !== undefined && !(FITS as readonly string[]).includes(fitValue)) {
    throw badRequest(`Unknown fit ${JSON.stringify(fitValue)}: use cover, contain or inside.`);
  }
  const formatValue = seen.get('format');
  const negotiated = formatValue === 'auto';
  if (
    formatValue !== undefined &&
    !negotiated &&
    !(OUTPUT_FORMATS as readonly string[]).includes(formatValue)
  ) {
    throw badRequest(
      `Unknown format ${JSON.stringify(formatValue)}: use jpeg, png, webp, avif or auto.`,
    );
  }
  const format = negotiated ? undefined : (formatValue as OutputFormat | undefined);
  const quality = qualityOf(seen.get('q'));
  if (quality !== undefined && format === 'png') {
    throw badRequest('q (quality) applies to jpeg, webp and avif, not to png.');
  }
  return {
    width,
    height,
    // With one size the image keeps its proportions whatever the fit: one canonical form.
    fit: width !== undefined && height !== undefined ? ((fitValue as Fit) ?? 'cover') : 'inside',
    format,
    quality,
    auto: negotiated ? accepted(accept) : undefined,
  };
}

function size(
  value: string | undefined,
  param: string,
  name: string,
  sizes: readonly number[],
): number | undefined {
  if (value === undefined) return undefined;
  const largest = sizes[sizes.length - 1] as number;
  if (!/^\d{1,9}$/.test(value)) {
    throw badRequest(
      `${param} (${name}) must be a whole number of pixels, 1 to ${largest}; got ${JSON.stringify(value)}.`,
    );
  }
  const px = Number(value);
  if (px < 1 || px > largest) {
    throw badRequest(`${param} (${name}) must be 1 to ${largest} pixels; got ${px}.`);
  }
  return allowedSize(px, sizes);
}

function qualityOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const q = /^\d{1,3}$/.test(value) ? Number(value) : Number.NaN;
  if (!(q >= 1 && q <= 100)) {
    throw badRequest(
      `q (quality) must be a whole number from 1 to 100; got ${JSON.stringify(value)}.`,
    );
  }
  return Math.ceil(q / QUALITY_STEP) * QUALITY_STEP;
}

/** Which modern formats the client says it takes (a type with q=0 is refused, RFC 9110). */
function accepted(accept: string | undefined): { avif: boolean; webp: boolean } {
  const taken = new Set(
    (accept ?? '')
      .split(',')
      .map((part) => part.split(';'))
      .filter(([, ...params]) => !params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p)))
      .map(([type]) => (type as string).trim().toLowerCase()),
  );
  return { avif: taken.has('image/avif'), webp: taken.has('image/webp') };
}

/** The smallest allowed size that holds `px` (the largest allowed, when none does). */
export function allowedSize(px: number, sizes: readonly number[]): number {
  return sizes.find((s) => s >= px) ?? (sizes[sizes.length - 1] as number);
}

/** The variant's part of its cache entry's key: equal for equal outputs, and only for those. */
export function variantId(spec: VariantSpec): string {
  const format = spec.auto
    ? `auto${spec.auto.avif ? '-avif' : ''}${spec.auto.webp ? '-webp' : ''}`
    : (spec.format ?? 'same');
  return `w${spec.width ?? ''}h${spec.height ?? ''}.${spec.fit}.${format}.q${spec.quality ?? ''}`;
}

/** Whether the variant `id` names (variantId) was negotiated from Accept: its answer varies on it. */
export function variesOnAccept(id: string): boolean {
  return id.split('.')[2]?.startsWith('auto') ?? false;
}

/** Checks a configured size allowlist (--variant-sizes): sorted, unique, 1 to 8192 px. */
export function parseSizes(value: string): number[] {
  const sizes = value.split(',').map((s) => s.trim());
  const numbers = sizes.map(Number);
  if (
    sizes.length === 0 ||
    sizes.some((s) => !/^\d+$/.test(s)) ||
    numbers.some((n) => n < 1 || n > 8192)
  ) {
    throw new Error(
      `variant sizes must be whole numbers of pixels from 1 to 8192, comma-separated; got ${JSON.stringify(value)}`,
    );
  }
  return [...new Set(numbers)].sort((a, b) => a - b);
}
