/**
 * Issue 8, SIGTERM on every service (real processes): an in-flight request finishes correctly,
 * new connections are refused, the process exits 0. The manager (a grow in flight) is
 * process-sigterm-manager.test.ts; that the wait is bounded, process-sigterm-stall.test.ts (a
 * stalled upload) and process-sigterm-resize.test.ts (a resize that cannot finish).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { auth } from '../helpers/nodes.ts';
import { refuses, sha256, slowUpload, tcpQueues, waitFor } from '../helpers/processes.ts';
import { bigImage, serviceHarness, terminate } from './process-sigterm-helpers.ts';

describe('SIGTERM on every service', { timeout: 300_000 }, () => {
  const services = serviceHarness('sigterm');
  before(() => services.setUp());
  after(() => services.tearDown());

  it('cache node: a slow reader of a 16 MB value gets every byte; then exit 0', async () => {
    const node = await services.start(['cache-node', '--port', '0'], 'node');
    const value = bigImage(16);
    const put = await fetch(`${node.url}/v1/entries/big`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'image/png', 'x-pixpool-version': '1' },
      body: new Uint8Array(value),
    });
    assert.equal(put.status, 204);
    let answering = (_ports: { client: number; node: number }) => {};
    const answered = new Promise<{ client: number; node: number }>((resolve) => {
      answering = resolve;
    });
    const body = new Promise<Buffer>((resolve, reject) => {
      const req = request(`${node.url}/v1/entries/big`, { headers: auth }, (res) => {
        res.pause(); // a slow reader: the node's socket fills, its write waits
        answering({ client: res.socket.localPort ?? 0, node: res.socket.remotePort ?? 0 });
        const chunks: Buffer[] = [];
        readSlowly.then(() => {
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.on('error', reject);
          res.resume();
        });
      });
      req.on('error', reject);
      req.end();
    });
    let go = () => {};
    const readSlowly = new Promise<void>((resolve) => {
      go = resolve;
    });
    // In flight: the node has begun its answer (its head is here) and has bytes waiting, not yet
    // taken by this reader, which does not read.
    const ports = await answered;
    await waitFor('the node to wait for the reader', () => {
      const sending = tcpQueues(ports.node, ports.client);
      return sending !== undefined && sending.unacked > 0;
    });
    const exit = terminate(node);
    await waitFor('the node to stop listening', () => refuses(node.url));
    go();
    assert.equal(sha256(await body), sha256(value), 'every byte of the value');
    assert.equal((await exit).code, 0);
  });

  it('frontend: an upload streamed across the SIGTERM is acknowledged and durable; then exit 0', async () => {
    const node = await services.start(['cache-node', '--port', '0'], 'node');
    const args = ['frontend', '--port', '0', '--nodes', node.url, '--data-dir', services.dir];
    const frontend = await services.start(args, 'frontend');
    const image = bigImage(4);
    const upload = slowUpload(frontend.url, 'slow', image);
    await upload.sendPart(0.5);
    await upload.received(); // in flight: the frontend has read the first half
    const exit = terminate(frontend);
    await waitFor('the frontend to stop listening', () => refuses(frontend.url));
    const answer = await upload.finish();
    assert.equal(answer.status, 200, answer.body);
    assert.deepEqual(JSON.parse(answer.body), { success: 'true', key: 'slow' });
    assert.equal((await exit).code, 0);

    const again = await services.start(args, 'frontend again');
    const read = await fetch(`${again.url}/images/slow`);
    assert.equal(read.status, 200);
    assert.equal(sha256(Buffer.from(await read.arrayBuffer())), sha256(image));
    await terminate(again);
  });
});
