import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bearerCheck } from '../../src/http/auth.ts';
import { auth, call, startNode, type TestNode } from '../helpers/nodes.ts';

describe('cache node auth', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(() => node.close());

  const protectedEndpoints: [string, string, unknown?][] = [
    ['POST', '/api/cache/key', { key: 'a' }],
    ['DELETE', '/api/cache/key', { key: 'a' }],
    ['POST', '/api/cache/content', { key: 'a', value: 'aGVsbG8=' }],
    ['GET', '/api/cache/config'],
    ['POST', '/api/cache/config', { capacity: 1 }],
    ['DELETE', '/api/cache'],
    ['GET', '/api/cache/statistics'],
    ['DELETE', '/api/cache/statistics'],
    ['GET', '/api/cache/regions'],
    ['GET', '/keys'],
    ['POST', '/api/cache/move_keys', { to: 'http://127.0.0.1:1', regions: [0] }],
    ['GET', '/v1/entries/a'],
    ['DELETE', '/v1/entries/a'],
    ['GET', '/metrics'],
    ['GET', '/no-such-endpoint'],
  ];

  it('every endpoint but /health refuses a missing or wrong secret with 401', async () => {
    node.cache.put('a', { value: Buffer.from('x'), contentType: 'image/png', version: 1 }, true);
    for (const [method, path, body] of protectedEndpoints) {
      const wrong: Record<string, string>[] = [
        {},
        { authorization: 'Bearer wrong' },
        { authorization: 'test-secret' },
      ];
      for (const headers of wrong) {
        const { status, body: answer } = await call(node.url, method, path, body, headers);
        assert.equal(status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
        assert.equal(answer.success, 'false');
        assert.equal(answer.error.code, 401);
      }
    }
    assert.ok(node.cache.peek('a'), 'nothing changed without the secret');
    assert.equal(node.cache.config.capacityMb, 10);
  });

  it('/health answers without a secret; the right secret opens the rest', async () => {
    assert.equal((await call(node.url, 'GET', '/health', undefined, {})).status, 200);
    assert.equal(
      (await call(node.url, 'GET', '/api/cache/statistics', undefined, auth)).status,
      200,
    );
  });

  it('compares secrets whole: prefixes, extensions and other schemes do not match', () => {
    const matches = bearerCheck('s3cret');
    assert.equal(matches('Bearer s3cret'), true);
    for (const header of [
      undefined,
      '',
      'Bearer s3cre',
      'Bearer s3cret!',
      'bearer s3cret',
      'Basic s3cret',
    ]) {
      assert.equal(matches(header), false, String(header));
    }
  });
});
