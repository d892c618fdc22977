/**
 * Upload bodies for the frontend's POST /api/upload: a multipart/form-data body with the fields
 * `key` and `file`, built by hand (no FormData, so the load generator spends its time sending,
 * not encoding), and test images that pass the frontend's type sniffing.
 */
import { randomBytes } from 'node:crypto';

/** JPEG/JFIF signature: what makes the frontend's sniffing call random bytes image/jpeg. */
export const JPEG_SIGNATURE = [0xff, 0xd8, 0xff, 0xe0] as const;

/** `size` random (incompressible) bytes that start with a JPEG signature. */
export function benchImage(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes.set(JPEG_SIGNATURE, 0);
  return bytes;
}

export interface MultipartUpload {
  contentType: string;
  body: Buffer;
}

/** A reusable encoder for one boundary: `encode(key, file)` → the whole request body. */
export function multipartEncoder(boundary = `pixpool-bench-${randomBytes(12).toString('hex')}`) {
  const contentType = `multipart/form-data; boundary=${boundary}`;
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType,
    encode(key: string, file: Uint8Array, fileType = 'image/jpeg'): MultipartUpload {
      const head = Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n${key}\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload"\r\n` +
          `Content-Type: ${fileType}\r\n\r\n`,
      );
      return { contentType, body: Buffer.concat([head, file, tail]) };
    },
  };
}
