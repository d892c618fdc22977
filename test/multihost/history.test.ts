/**
 * The history checker of the multi-host tests (test/helpers/history.ts), against a fake frontend
 * in this process whose answers the test chooses: what it calls stale, refused and failed, so a
 * scenario's zero means something.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sniffImageType } from '../../src/core/image-type.ts';
import { regionOf } from '../../src/core/regions.ts';
import { createHistory, keysOverRegions, pngFor, type Via } from '../helpers/history.ts';

type Answer = { status: number; body: Buffer | string; type?: string };

describe('the history checker', () => {
  let server: Server;
  let via: Via;
  /** What the fake frontend answers next: to an upload, and to a read. */
  let onUpload: () => Promise<Answer> | Answer = () => ({ status: 200, body: '' });
  let onRead: () => Answer = () => ({ status: 500, body: '' });
  const envelope = (code: number) =>
    JSON.stringify({ success: 'false', error: { code, message: 'Refused on purpose.' } });

  before(async () => {
    server = createServer(async (request: IncomingMessage, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      let answer: Answer;
      if (request.url === '/api/upload') {
        const form = await new Response(Buffer.concat(chunks), {
          headers: { 'content-type': request.headers['content-type'] as string },
        }).formData();
        answer = await onUpload();
        if (answer.status === 200)
          answer.body = JSON.stringify({ success: 'true', key: form.get('key') });
      } else {
        answer = onRead();
      }
      response.writeHead(answer.status, { 'content-type': answer.type ?? 'application/json' });
      response.end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    via = { name: 'fake', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  const serve = (bytes: Buffer): Answer => ({ status: 200, body: bytes, type: 'image/png' });

  it('makes real, distinct PNGs and keys in every region', () => {
    assert.equal(sniffImageType(pngFor('k', 0)), 'image/png');
    assert.notDeepEqual(pngFor('k', 0), pngFor('k', 1));
    assert.notDeepEqual(pngFor('k', 0), pngFor('j', 0));
    const keys = keysOverRegions('t', 2);
    assert.equal(keys.length, 32);
    assert.deepEqual(
      keys.map(regionOf),
      Array.from({ length: 32 }, (_, i) => Math.floor(i / 2)),
    );
  });

  it('judges reads against the last upload acknowledged before they started', async () => {
    const history = createHistory();
    history.setPhase('p');
    assert.equal((await history.upload(via, 'k')).outcome, 'acked'); // 0
    onRead = () => serve(pngFor('k', 0));
    assert.equal((await history.read(via, 'k')).outcome, 'ok');
    assert.equal((await history.upload(via, 'k')).outcome, 'acked'); // 1
    const stale = await history.read(via, 'k');
    assert.deepEqual([stale.outcome, stale.seq, stale.floor], ['stale', 0, 1]);

    // Upload 2 in flight: reads may see 1 or 2.
    let release: () => void = () => {};
    onUpload = () =>
      new Promise<Answer>((resolve) => {
        release = () => resolve({ status: 200, body: '' });
      });
    const inFlight = history.upload(via, 'k');
    await new Promise((resolve) => setTimeout(resolve, 50));
    onRead = () => serve(pngFor('k', 1));
    assert.equal((await history.read(via, 'k')).outcome, 'ok');
    onRead = () => serve(pngFor('k', 2));
    assert.equal((await history.read(via, 'k')).outcome, 'ok');
    release();
    assert.equal((await inFlight).outcome, 'acked');
    onRead = () => serve(pngFor('k', 1));
    assert.equal((await history.read(via, 'k')).outcome, 'stale');

    // A refused upload (3) may have been committed: its bytes are fine, and so are 2's.
    onUpload = () => ({ status: 503, body: envelope(503) });
    assert.equal((await history.upload(via, 'k')).outcome, 'refused');
    onRead = () => serve(pngFor('k', 3));
    assert.equal((await history.read(via, 'k')).outcome, 'ok');
    onRead = () => serve(pngFor('k', 2));
    assert.equal((await history.read(via, 'k', true)).outcome, 'failed', 'not JSON: failed');
    onRead = () => ({
      status: 200,
      body: JSON.stringify({
        success: 'true',
        key: 'k',
        content: `data:image/png;base64,${pngFor('k', 2).toString('base64')}`,
      }),
    });
    assert.equal((await history.read(via, 'k', true)).outcome, 'ok', 'POST /api/key decoded');

    // Refusals by design, and everything else.
    onRead = () => ({ status: 503, body: envelope(503) });
    assert.equal((await history.read(via, 'k')).outcome, 'refused');
    for (const answer of [
      { status: 503, body: 'Service Unavailable', type: 'text/plain' },
      { status: 503, body: envelope(500) },
      { status: 404, body: envelope(404) },
      serve(pngFor('other', 2)),
      serve(Buffer.from('not an upload')),
    ]) {
      onRead = () => answer;
      assert.equal((await history.read(via, 'k')).outcome, 'failed', JSON.stringify(answer.body));
    }
    onUpload = () => ({ status: 500, body: envelope(500) });
    assert.equal((await history.upload(via, 'k')).outcome, 'failed');

    assert.deepEqual(history.counts(['p']), {
      requests: 19,
      reads: 14,
      uploads: 3,
      uploadsRefused: 1,
      stale: 2,
      failed: 7,
      refused: 1,
    });
    assert.equal(history.counts(['other phase']).requests, 0);
    assert.match(history.problems(['p']).join('\n'), /2 × read stale via fake/);
  });

  it('counts a connection error as a failure', async () => {
    const history = createHistory();
    const closed = { name: 'closed', url: 'http://127.0.0.1:1' };
    assert.equal((await history.upload(closed, 'k')).outcome, 'failed');
    onUpload = () => ({ status: 200, body: '' });
    await history.upload(via, 'k');
    assert.equal((await history.read(closed, 'k')).outcome, 'failed');
  });
});
