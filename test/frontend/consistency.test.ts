import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFsObjectStore } from '../../src/storage/fs-object-store.ts';
import { createMetadataStore } from '../../src/storage/metadata-store.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { createSqliteDriver } from '../../src/storage/sqlite-driver.ts';
import { startFrontend, type TestFrontend, upload } from '../helpers/frontend.ts';
import { imageBytes } from '../helpers/images.ts';

/**
 * A real folder store that counts reads and can hold them back, to force interleavings; `held`
 * counts the reads waiting at the gate now.
 */
function instrumented(store: ObjectStore) {
  const state = { reads: 0, held: 0, gate: undefined as Promise<void> | undefined };
  const wrapped: ObjectStore = {
    ...store,
    list: () => store.list(),
    // The gate holds a read back *after* it has the bytes, like a slow network transfer would.
    async get(name) {
      state.reads++;
      const bytes = await store.get(name);
      const gate = state.gate;
      if (gate) {
        state.held++;
        await gate;
        state.held--;
      }
      return bytes;
    },
  };
  return { store: wrapped, state };
}

/** A real metadata store that counts row reads done (each fetch that missed the node makes one). */
async function countingMetadata() {
  const store = await createMetadataStore(createSqliteDriver());
  const state = { gets: 0 };
  return {
    state,
    store: {
      ...store,
      async get(key: string) {
        const row = await store.get(key);
        state.gets++; // counted once the row is in hand: the fetch then joins the object read
        return row;
      },
    },
  };
}

async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The frontend's count of cache fills with `outcome` (stored, stale, error), from /metrics. */
async function fillsCounted(url: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = new RegExp(
    `^pixpool_frontend_fills_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`,
    'm',
  );
  return Number(line.exec(text)?.[1] ?? 0);
}

describe('frontend consistency under concurrency', () => {
  let fe: TestFrontend;
  let io: ReturnType<typeof instrumented>;
  let rows: Awaited<ReturnType<typeof countingMetadata>>;
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pixpool-consistency-'));
    io = instrumented(createFsObjectStore({ dir }));
    rows = await countingMetadata();
    fe = await startFrontend({ objects: io.store, metadata: rows.store });
  });
  after(() => fe.close());

  it('concurrent misses for one key cost one object read', async () => {
    const png = imageBytes('png', 20_000, 1);
    await upload(fe.url, 'popular', png);
    let open: () => void = () => {};
    io.state.gate = new Promise((resolve) => {
      open = resolve;
    });
    const reads = io.state.reads;
    const gets = rows.state.gets;
    const fetches = Array.from({ length: 20 }, () => fetch(`${fe.url}/images/popular`));
    // Every fetch has missed the node and read the row, however slowly this machine delivers
    // the 20 requests. Each joins the object read as soon as it has the row, in the same
    // microtask run as the count (before any timer of until() fires): a fetch that did not join
    // would make a second read, which the last assertion catches.
    await until(() => rows.state.gets - gets >= 20, 'the 20 fetches to read the row');
    open();
    io.state.gate = undefined;
    const bodies = await Promise.all(
      fetches.map(async (f) => Buffer.from(await (await f).arrayBuffer())),
    );
    for (const body of bodies) assert.ok(body.equals(png));
    assert.equal(io.state.reads - reads, 1);
  });

  it('a slow fill of the old version cannot put it back after a newer upload', async () => {
    const v1 = imageBytes('png', 1000, 10);
    const v2 = imageBytes('png', 1000, 20);
    await upload(fe.url, 'race', v1);
    let open: () => void = () => {};
    io.state.gate = new Promise((resolve) => {
      open = resolve;
    });
    const staleFills = await fillsCounted(fe.url, 'stale');
    // This fetch reads row v1, then waits at the object read with v1's bytes...
    const slow = fetch(`${fe.url}/images/race`).then(async (r) =>
      Buffer.from(await r.arrayBuffer()),
    );
    await until(() => io.state.held === 1, 'the fetch to hold v1 at the object read');
    io.state.gate = undefined;
    // ...while v2 is uploaded and acknowledged (invalidating with v2's version)...
    assert.equal((await upload(fe.url, 'race', v2)).status, 200);
    open();
    // ...so its late fill of v1 must be refused, and every later read sees v2.
    assert.ok((await slow).equals(v1), 'the fetch that started before the upload saw v1');
    await until(
      async () => (await fillsCounted(fe.url, 'stale')) > staleFills,
      'the node to refuse the late fill of v1',
    );
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${fe.url}/images/race`);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(v2), `read ${i} after the ack`);
    }
    // Those reads fill the node with v2: it must come to hold v2, and never v1.
    const node = fe.nodes[0]?.cache;
    await until(() => {
      const held = node?.peek('race')?.value;
      assert.ok(!held?.equals(v1), 'the node holds v1 after v2 was acknowledged');
      return held?.equals(v2) ?? false;
    }, 'the node to hold v2');
  });

  it('concurrent uploads and fetches of one key never return an image older than the last ack', async () => {
    const versions = Array.from({ length: 30 }, (_, i) => imageBytes('png', 4000, 100 + i));
    let acknowledged = -1;
    let stop = false;
    let stale = 0;
    let reads = 0;
    const writer = (async () => {
      for (const [i, bytes] of versions.entries()) {
        assert.equal((await upload(fe.url, 'hot', bytes)).status, 200);
        acknowledged = i;
      }
      stop = true;
    })();
    const reader = async () => {
      while (!stop) {
        const floor = acknowledged;
        const r = await fetch(`${fe.url}/images/hot`);
        if (r.status === 404 && floor < 0) continue;
        const body = Buffer.from(await r.arrayBuffer());
        const index = versions.findIndex((v) => v.equals(body));
        assert.ok(index >= 0, 'every byte matches some uploaded version');
        reads++;
        if (index < floor) stale++;
      }
    };
    await Promise.all([writer, reader(), reader(), reader()]);
    assert.equal(stale, 0, `stale reads out of ${reads}`);
    assert.ok(reads > 30);
  });
});
