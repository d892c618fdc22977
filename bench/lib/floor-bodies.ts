/**
 * The bodies of the hop-floor case: distinct per key and deterministic, so bench/floor-server.ts
 * (which makes them at start) and the case (which writes them for nginx and checks every answer)
 * agree without passing 200 MB around. AES-128-CTR over zeros: incompressible like the other
 * cases' random images, starting with the same JPEG signature.
 */
import { createCipheriv } from 'node:crypto';
import { JPEG_SIGNATURE } from './multipart.ts';

const KEY = Buffer.from('pixpool-hopfloor');

/** Body `i` (0 ≤ i < 2^32) of `bytes` bytes: the same on every call and in every process. */
export function floorBody(i: number, bytes: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(i, 0);
  const body = createCipheriv('aes-128-ctr', KEY, iv).update(Buffer.alloc(bytes));
  body.set(JPEG_SIGNATURE, 0);
  return body;
}
