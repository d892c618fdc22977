/**
 * The frontend gives an image read from a node back to its client's body pool once the socket
 * lane has written it (clients/node-client.ts recycle, frontend/images.ts askNode), and only when
 * nothing else holds it: not a near-cached copy, not one shared by concurrent reads. A real node,
 * node client and stores; the service is driven directly where the timing of reads matters.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createNodeClient } from '../../src/clients/node-client.ts';
import { classOf } from '../../src/core/buffer-pool.ts';
import { createImageService, type ImageService } from '../../src/frontend/images.ts';
import { createFrontendMetrics } from '../../src/frontend/metrics.ts';
import { createRouting, staticPoolView } from '../../src/frontend/routing.ts';
import { createTransformer } from '../../src/frontend/variants/transform.ts';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';
import { SECRET, startNode, type TestNode } from '../helpers/nodes.ts';
import { byLane, exchange } from '../helpers/raw-http.ts';

const get = (path: string, close = false) =>
  `GET ${path} HTTP/1.1\r\nHost: fe\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;

describe('image service: which node reads may be given back', { timeout: 60_000 }, () => {
  let node: TestNode;
  let dir: string;
  let close: () => Promise<void>;
  let service: (nearCacheBytes: number) => ImageService;
  const bytes = imageBytes('png', 100_000, 5);

  before(async () => {
    node = await startNode({ capacityMb: 16 });
    dir = await mkdtemp(join(tmpdir(), 'pixpool-read-buffers-'));
    const metadata = await createMetadataStore(createSqliteDriver());
    const objects = createFsObjectStore({ dir: join(dir, 'objects') });
    const nodes = createNodeClient({ secret: SECRET });
    const routing = createRouting(staticPoolView([node.url]));
    service = (nearCacheBytes) =>
      createImageService({
        metadata,
        objects,
        nodes,
        routing,
        metrics: createFrontendMetrics(new Registry()),
        log: pino({ level: 'silent' }),
        nearCacheBytes,
        transformer: createTransformer(),
      });
    await service(0).upload('k', bytes);
    close = async () => {
      await nodes.close();
      await metadata.close();
      await objects.close();
    };
  });
  after(async () => {
    await close();
    await node.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an image read alone from its node, and not kept near, may be given back', async () => {
    const images = service(0);
    const first = await images.fetch('k');
    assert.equal(first?.source, 'storage');
    assert.equal(first?.release, undefined, 'storage reads are not pooled');
    await new Promise((resolve) => setTimeout(resolve, 50)); // the fill reaches the node
    const second = await images.fetch('k');
    assert.equal(second?.source, 'cache');
    assert.deepEqual(second?.bytes, bytes);
    assert.equal(typeof second?.release, 'function');
  });

  it('not when concurrent reads share the node check', async () => {
    const images = service(0);
    const shared = await Promise.all([images.fetch('k'), images.fetch('k')]);
    assert.ok(shared.every((image) => image?.source === 'cache'));
    assert.equal(shared[0]?.bytes, shared[1]?.bytes, 'one read, one body');
    assert.ok(shared.every((image) => image?.release === undefined));
  });

  it('not when the near cache keeps it', async () => {
    const images = service(16 * 1024 * 1024);
    const kept = await images.fetch('k');
    assert.equal(kept?.source, 'cache');
    assert.equal(kept?.release, undefined);
  });
});

describe('socket lane: node reads given back once written', { timeout: 60_000 }, () => {
  let node: TestNode;
  let fe: TestFrontend;
  const a = imageBytes('png', 100_000, 6);
  const b = imageBytes('gif', 99_000, 7);

  /** The frontend's idle read-buffer memory, from its metrics. */
  async function idleBytes(): Promise<number> {
    const text = await (await fetch(`${fe.url}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('pixpool_frontend_idle_read_buffer_bytes'));
    return Number(line?.split(' ').pop());
  }

  before(async () => {
    node = await startNode({ capacityMb: 16 });
    // No near cache: every read crosses to the node.
    fe = await startFrontend({ nodes: [node], socketLanes: true, nearCacheMb: 0 });
    assert.equal((await upload(fe.url, 'a', a)).status, 200);
    assert.equal((await upload(fe.url, 'b', b)).status, 200);
    // From storage (each fills the node).
    await exchange(fe.url, [get('/images/a') + get('/images/b', true)]);
  });
  after(async () => {
    await fe.close();
    await node.close();
  });

  it('reuses one answered image for the next read, whose bytes are its own', async () => {
    assert.equal(await idleBytes(), 0);
    const [first] = await exchange(fe.url, [get('/images/a', true)]);
    assert.ok(first && byLane(first));
    assert.equal(first.headers['x-pixpool-source'], 'cache');
    assert.deepEqual(first.body, a);
    assert.equal(await idleBytes(), classOf(a.length), 'given back once written');
    // b's read takes a's memory (same class) and gives it back: still one buffer idle, not two.
    const answers = await exchange(fe.url, [
      get('/images/b') + get('/images/a') + get('/images/b', true),
    ]);
    assert.deepEqual(
      answers.map((answer) => answer.body),
      [b, a, b],
    );
    assert.ok(answers.every((answer) => answer.headers['x-pixpool-source'] === 'cache'));
    assert.equal(await idleBytes(), classOf(a.length));
  });
});
