/**
 * Nodes an engine starts announce themselves (POST /api/manager/nodes/register); the provider
 * checks each claim with its engine before the node enters a view. A toy engine here stands in
 * for EC2 or Kubernetes: it "boots" a machine by naming it and letting its node (a real cache node
 * on a real socket) announce itself over HTTP, as a node started with --announce does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../src/http/listen.ts';
import {
  ClaimRefused,
  type NodeProvider,
  type ProvidedNode,
} from '../../src/manager/providers/provider.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import { auth, startNode, type TestNode } from '../helpers/nodes.ts';

function toyEngine(managerUrl: string, nodes: TestNode[]) {
  /** The engine's machines of this pool: ref → the node's URL. */
  const machines = new Map<string, string>();
  const waiting = new Map<string, { id: string; resolve: (node: ProvidedNode) => void }>();
  const announced: string[] = [];
  let booted = 0;

  async function announce(ref: string, url: string) {
    const answer = await managerCall(
      managerUrl,
      'POST',
      '/api/manager/nodes/register',
      { url, ref },
      auth,
    );
    announced.push(`${ref} ${answer.status}`);
  }

  const provider: NodeProvider = {
    name: 'toy',
    outlivesManager: true,
    start(id) {
      const node = nodes[booted++];
      if (!node) return Promise.reject(new Error('no machine left'));
      const ref = `m-${booted}`;
      machines.set(ref, node.url);
      const started = new Promise<ProvidedNode>((resolve) => waiting.set(ref, { id, resolve }));
      void announce(ref, node.url);
      return started;
    },
    async register({ url, ref }) {
      if (ref === 'm-flaky') throw new Error('engine API throttled');
      const known = machines.get(ref);
      if (known === undefined) throw new ClaimRefused(`No machine ${ref} runs in this pool.`);
      if (known !== url) throw new ClaimRefused(`${url} is not the address of ${ref}.`);
      const start = waiting.get(ref);
      if (!start) throw new ClaimRefused(`No node start waits for ${ref}.`);
      waiting.delete(ref);
      start.resolve({ id: start.id, url });
      return { id: start.id, url };
    },
    stop: async () => {},
    resume: async (listed) => listed,
    onReplaced: () => {},
    close: async () => {},
  };
  return { provider, announced };
}

describe('nodes announced by an engine join only once the engine backs their claim', () => {
  let nodes: TestNode[];
  let m: TestManager;
  let engine: ReturnType<typeof toyEngine>;
  const register = (body: unknown, headers: Record<string, string> = auth) =>
    managerCall(m.url, 'POST', '/api/manager/nodes/register', body, headers);

  before(async () => {
    nodes = await Promise.all([startNode(), startNode()]);
    const port = await freePort('127.0.0.1');
    engine = toyEngine(`http://127.0.0.1:${port}`, nodes);
    m = await startManager({ provider: engine.provider, port });
  });
  after(async () => {
    await m.close();
    await Promise.all(nodes.map((n) => n.close()));
  });

  it('starts and grows the pool with nodes that announced themselves', async () => {
    assert.deepEqual(Object.values(m.pool.view().addresses), [nodes[0]?.url]);
    await (await m.pool.resize(1)).done;
    assert.deepEqual(Object.values(m.pool.view().addresses).sort(), nodes.map((n) => n.url).sort());
    assert.deepEqual(engine.announced, ['m-1 200', 'm-2 200']);
  });

  it('refuses claims the engine does not back, with the reason, and lets nothing in', async () => {
    const before = m.pool.view();
    const unknown = await register({ url: 'http://127.0.0.1:9', ref: 'm-99' });
    assert.equal(unknown.status, 403);
    assert.match(unknown.body.error.message, /No machine m-99 runs in this pool/);
    const elsewhere = await register({ url: 'http://127.0.0.1:9', ref: 'm-1' });
    assert.equal(elsewhere.status, 403);
    assert.match(elsewhere.body.error.message, /is not the address of m-1/);
    const again = await register({ url: nodes[0]?.url, ref: 'm-1' });
    assert.equal(again.status, 403);
    assert.match(again.body.error.message, /No node start waits for m-1/);
    assert.deepEqual(m.pool.view(), before);
  });

  it('answers 503 when the engine cannot be asked, so the node asks again', async () => {
    const answer = await register({ url: 'http://127.0.0.1:9', ref: 'm-flaky' });
    assert.equal(answer.status, 503);
    assert.match(answer.body.error.message, /could not check this node with its engine/);
  });

  it('gets a 4xx envelope with a clear message for bad input', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ url: 'http://127.0.0.1:9' }, 400, /ref must name the node’s machine/],
      [{ url: 'http://127.0.0.1:9', ref: 'a b' }, 400, /ref must name/],
      [{ url: 'http://127.0.0.1:9', ref: 7 }, 400, /ref must name/],
      [{ url: 'http://127.0.0.1:9', ref: 'x'.repeat(300) }, 400, /ref must name/],
      [{ ref: 'm-1' }, 400, /node URL must be a URL/],
      [{ url: 'ftp://127.0.0.1:9', ref: 'm-1' }, 400, /must use http or https/],
      [{ url: 'http://u:p@127.0.0.1:9', ref: 'm-1' }, 400, /bare http\(s\) origin/],
      [[1, 2], 400, /Send a JSON object/],
    ];
    for (const [body, status, message] of cases) {
      const answer = await register(body);
      assert.equal(answer.status, status, JSON.stringify(body));
      assert.equal(answer.body.success, 'false');
      assert.match(answer.body.error.message, message, JSON.stringify(body));
    }
    const noSecret = await register({ url: 'http://127.0.0.1:9', ref: 'm-1' }, {});
    assert.equal(noSecret.status, 401);
  });
});

it('a pool whose provider starts its own nodes lets no node register', async () => {
  const node = await startNode();
  const provider: NodeProvider = {
    name: 'static',
    start: async (id) => ({ id, url: node.url }),
    stop: async () => {},
    resume: async (listed) => listed,
    onReplaced: () => {},
    close: async () => {},
  };
  const m = await startManager({ provider });
  try {
    const answer = await managerCall(
      m.url,
      'POST',
      '/api/manager/nodes/register',
      { url: 'http://127.0.0.1:9', ref: 'i-1' },
      auth,
    );
    assert.equal(answer.status, 403);
    assert.match(answer.body.error.message, /provider \(static\) starts its own nodes/);
  } finally {
    await m.close();
    await node.close();
  }
});
