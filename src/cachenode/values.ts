/**
 * Values as the seed API carries them: a data URL (`data:image/png;base64,…`) or bare base64.
 *
 * Base64 is checked strictly (Buffer.from would silently skip bad characters and store garbage).
 * A bare value's content type is sniffed from its bytes.
 */
import { badRequest } from '../core/errors.ts';
import { sniffImageType } from '../core/image-type.ts';

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)((?:;[\w.+-]+=[\w.+-]+)*);base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function parseValue(value: unknown): { bytes: Buffer; contentType: string } {
  if (typeof value !== 'string' || value.length === 0) {
    throw badRequest('A value is required: a data URL (data:image/png;base64,…) or base64.');
  }
  let contentType: string | undefined;
  let base64 = value;
  if (value.startsWith('data:')) {
    const match = DATA_URL.exec(value);
    if (!match) {
      throw badRequest('The value is not a base64 data URL (data:<type>;base64,<data>).');
    }
    contentType = (match[1] as string).toLowerCase();
    base64 = value.slice(match[0].length);
  }
  if (base64.length === 0 || base64.length % 4 !== 0 || !BASE64.test(base64)) {
    throw badRequest('The value is not valid base64.');
  }
  const bytes = Buffer.from(base64, 'base64');
  return {
    bytes,
    contentType: contentType ?? sniffImageType(bytes) ?? 'application/octet-stream',
  };
}

export function toDataUrl(contentType: string, bytes: Buffer): string {
  return `data:${contentType};base64,${bytes.toString('base64')}`;
}
