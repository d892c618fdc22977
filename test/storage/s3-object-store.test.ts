import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { PixpoolError } from '../../src/core/errors.ts';
import { newObjectName } from '../../src/storage/object-store.ts';
import { createS3ObjectStore } from '../../src/storage/s3-object-store.ts';
import { deadPort, S3_CREDENTIALS, startS3Server, type TestS3 } from '../helpers/storage.ts';
import { objectStoreContract } from './object-store.contract.ts';

describe('S3 (s3rver)', () => {
  let s3: TestS3;
  before(async () => {
    s3 = await startS3Server();
  });
  after(() => s3.close());

  objectStoreContract('S3', async () =>
    createS3ObjectStore(s3.storeOptions(await s3.createBucket())),
  );

  it('stores the raw bytes with their content type, so the bucket is browsable', async () => {
    const store = createS3ObjectStore(s3.storeOptions());
    const client = new S3Client({ ...s3.storeOptions(), credentials: S3_CREDENTIALS });
    try {
      const name = newObjectName('k');
      await store.put(name, Buffer.from('GIF89a...'), 'image/gif');
      const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: name }));
      assert.equal(object.ContentType, 'image/gif');
      assert.equal(await object.Body?.transformToString(), 'GIF89a...');
    } finally {
      client.destroy();
      await store.close();
    }
  });

  it('keeps a missing bucket as the SDK error, not a 503: that is configuration, not an outage', async () => {
    const store = createS3ObjectStore(s3.storeOptions('no-such-bucket'));
    try {
      await assert.rejects(
        store.put(newObjectName('k'), Buffer.from('x'), 'image/png'),
        (e: Error) => {
          assert.ok(!(e instanceof PixpoolError), String(e));
          assert.equal(e.name, 'NoSuchBucket');
          return true;
        },
      );
    } finally {
      await store.close();
    }
  });
});

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** A stand-in S3 endpoint: `handler` answers, or, given a status, every request gets it. */
async function fakeS3(
  handler: Handler | number | undefined,
): Promise<{ endpoint: string; server: Server }> {
  const server = createServer((request, response) => {
    request.resume();
    if (typeof handler === 'function') return handler(request, response);
    if (handler === undefined) return; // never answers
    response.writeHead(handler, { 'content-type': 'application/xml' });
    response.end(
      `<Error><Code>${handler === 403 ? 'AccessDenied' : 'InternalError'}</Code></Error>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const xml = (response: ServerResponse, status: number, body: string) => {
  response.writeHead(status, { 'content-type': 'application/xml' });
  response.end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
};

/** A bucket listing of `names` on one page, where DeleteObjects answers with `deleteAnswer`. */
const bucketOf =
  (names: string[], deleteAnswer: (response: ServerResponse) => void): Handler =>
  (request, response) => {
    if (request.method === 'POST' && request.url?.includes('delete')) return deleteAnswer(response);
    const contents = names.map((n) => `<Contents><Key>${n}</Key><Size>1</Size></Contents>`);
    xml(
      response,
      200,
      `<ListBucketResult><Name>pixpool</Name><KeyCount>${names.length}</KeyCount>` +
        `<IsTruncated>false</IsTruncated>${contents.join('')}</ListBucketResult>`,
    );
  };

const storeAt = (endpoint: string) =>
  createS3ObjectStore({
    bucket: 'pixpool',
    endpoint,
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    maxAttempts: 1,
    connectTimeoutMs: 300,
    idleTimeoutMs: 300,
  });

const isUnavailable = (error: unknown) => {
  assert.ok(error instanceof PixpoolError, String(error));
  assert.equal(error.status, 503);
  assert.match(error.message, /storage is unavailable/i);
  // The endpoint and the bucket are for the log (the detail), not for a client.
  assert.doesNotMatch(error.message, /127\.0\.0\.1|bucket|pixpool/);
  assert.match(error.detail ?? '', /S3 bucket "pixpool" at http:\/\/127\.0\.0\.1:\d+/);
  return true;
};

describe('S3 failures', () => {
  it('answers 503 quickly when nothing listens at the endpoint', async () => {
    const store = storeAt(`http://127.0.0.1:${await deadPort()}`);
    const started = Date.now();
    await assert.rejects(
      store.put(newObjectName('k'), Buffer.from('x'), 'image/png'),
      isUnavailable,
    );
    await assert.rejects(store.get(newObjectName('k')), isUnavailable);
    await assert.rejects(store.delete(newObjectName('k')), isUnavailable);
    await assert.rejects(store.list()[Symbol.asyncIterator]().next(), isUnavailable);
    await assert.rejects(store.deleteAll(), isUnavailable);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    await store.close();
  });

  for (const [what, status] of [
    ['an endpoint that never answers', undefined],
    ['an endpoint answering 500', 500],
  ] as const) {
    it(`answers 503 for ${what}`, async () => {
      const fake = await fakeS3(status);
      const store = storeAt(fake.endpoint);
      try {
        const started = Date.now();
        await assert.rejects(store.get(newObjectName('k')), isUnavailable);
        assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      } finally {
        await store.close();
        fake.server.closeAllConnections();
        fake.server.close();
      }
    });
  }

  it('reports the objects S3 refused to delete, and counts the rest', async () => {
    const fake = await fakeS3(
      bucketOf(['a', 'b', 'c'], (response) =>
        xml(
          response,
          200,
          '<DeleteResult><Error><Key>b</Key><Code>AccessDenied</Code>' +
            '<Message>Access Denied</Message></Error></DeleteResult>',
        ),
      ),
    );
    const store = storeAt(fake.endpoint);
    try {
      assert.deepEqual(await store.deleteAll(), { deleted: 2, failed: ['b'] });
    } finally {
      await store.close();
      fake.server.close();
    }
  });

  it('reports a whole batch as failed when its DeleteObjects request fails', async () => {
    const fake = await fakeS3(
      bucketOf(['a', 'b'], (response) =>
        xml(response, 500, '<Error><Code>InternalError</Code></Error>'),
      ),
    );
    const store = storeAt(fake.endpoint);
    try {
      assert.deepEqual(await store.deleteAll(), { deleted: 0, failed: ['a', 'b'] });
    } finally {
      await store.close();
      fake.server.close();
    }
  });

  it('keeps access denied as the SDK error', async () => {
    const fake = await fakeS3(403);
    const store = storeAt(fake.endpoint);
    try {
      await assert.rejects(store.get(newObjectName('k')), (e: Error) => {
        assert.ok(!(e instanceof PixpoolError));
        assert.equal(e.name, 'AccessDenied');
        return true;
      });
    } finally {
      await store.close();
      fake.server.close();
    }
  });
});
