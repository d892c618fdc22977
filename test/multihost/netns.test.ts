/**
 * The multi-host harness itself (test/helpers/netns.ts): hosts reach each other and the bridge
 * address, and nothing on the machine's loopback; a cut stops traffic both ways and nothing else;
 * isolating a host keeps the peers it names; healing restores everything; destroying the lab kills
 * the processes in its namespaces and removes every namespace and interface it made; leftovers of
 * a crashed run are removed, those of a live run and anything not ours are not. Needs root.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  createLab,
  type Host,
  type Lab,
  NODE,
  removeLeftovers,
  requireRoot,
} from '../helpers/netns.ts';
import { processAlive } from '../helpers/processes.ts';

const run = promisify(execFile);
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const namespaces = () => ip('netns', 'list');
const linkNames = () => ip('-o', 'link', 'show');

const SERVER = `require('node:http').createServer((q, r) => r.end(process.argv[1]))
  .listen(8080, '0.0.0.0', () => console.log('listening on http://0.0.0.0:8080'));`;

describe('network namespaces as hosts', { timeout: 60_000 }, () => {
  let lab: Lab;
  let a: Host;
  let b: Host;
  let c: Host;
  let root: Server;
  let rootUrl: string;

  before(async () => {
    lab = await createLab();
    [a, b, c] = [await lab.addHost('a'), await lab.addHost('b'), await lab.addHost('c')];
    for (const host of [a, b, c]) {
      const server = host.exec([NODE, '-e', SERVER, host.name]);
      while (!server.output().includes('listening')) {
        assert.equal(server.child.exitCode, null, server.output());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    root = createServer((_q, r) => r.end('gateway'));
    await new Promise<void>((resolve) => root.listen(0, lab.gateway, resolve));
    rootUrl = `http://${lab.gateway}:${(root.address() as AddressInfo).port}`;
  });
  after(async () => {
    lab?.destroy();
    await new Promise((resolve) => root?.close(resolve));
  });

  /**
   * What `url` answers when asked from inside `from` ('unreachable' when nothing does). Not
   * spawnSync: the gateway's server runs in this process and must go on answering.
   */
  async function askFrom(from: Host, url: string): Promise<string> {
    const script = `fetch(process.argv[1], { signal: AbortSignal.timeout(1500) })
      .then((r) => r.text()).then((t) => console.log(t), () => console.log('unreachable'));`;
    const { stdout } = await run('ip', ['netns', 'exec', from.ns, NODE, '-e', script, url]);
    return stdout.trim();
  }
  const at = (host: Host) => host.url(8080);

  it('hosts reach each other and the gateway; the gateway reaches them; no loopback across', async () => {
    assert.match(a.address, /^198\.1[89]\.\d+\.\d+$/);
    assert.equal(await askFrom(a, at(b)), 'b');
    assert.equal(await askFrom(c, at(a)), 'a');
    assert.equal(await askFrom(a, rootUrl), 'gateway');
    assert.equal(await (await fetch(at(b))).text(), 'b');
    // The machine's own loopback services are not there: a host's 127.0.0.1 is its own.
    const loopback = createServer((_q, r) => r.end('loopback'));
    await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = loopback.address() as AddressInfo;
      assert.equal(await (await fetch(`http://127.0.0.1:${port}`)).text(), 'loopback');
      assert.equal(await askFrom(a, `http://127.0.0.1:${port}`), 'unreachable');
      assert.equal(await askFrom(a, 'http://127.0.0.1:8080'), 'a');
    } finally {
      await new Promise((resolve) => loopback.close(resolve));
    }
  });

  it('a cut stops both directions between two hosts and nothing else; healing restores it', async () => {
    await lab.cut(a, b);
    assert.deepEqual(lab.cuts().sort(), ['a ↛ b', 'b ↛ a']);
    assert.equal(await askFrom(a, at(b)), 'unreachable');
    assert.equal(await askFrom(b, at(a)), 'unreachable');
    assert.equal(await askFrom(a, at(c)), 'c');
    assert.equal(await askFrom(b, at(c)), 'c');
    assert.equal(await askFrom(a, rootUrl), 'gateway');
    await lab.heal(a, b);
    assert.deepEqual(lab.cuts(), []);
    assert.equal(await askFrom(a, at(b)), 'b');
    assert.equal(await askFrom(b, at(a)), 'a');
  });

  it('isolating a host keeps the peers named (and the gateway unless told)', async () => {
    await lab.isolate(a, [c]);
    assert.equal(await askFrom(a, at(b)), 'unreachable');
    assert.equal(await askFrom(b, at(a)), 'unreachable');
    assert.equal(await askFrom(a, at(c)), 'c');
    assert.equal(await askFrom(a, rootUrl), 'gateway');
    await lab.isolate(a, [c], { keepGateway: false });
    assert.equal(await askFrom(a, rootUrl), 'unreachable');
    await lab.healAll();
    assert.deepEqual(lab.cuts(), []);
    assert.equal(await askFrom(a, at(b)), 'b');
    assert.equal(await askFrom(a, rootUrl), 'gateway');
  });

  it('removes a crashed run’s leftovers, and leaves live runs and what is not ours alone', () => {
    const exited = spawnSync(process.execPath, ['-e', '']);
    const dead = exited.pid as number;
    assert.equal(processAlive(dead), false);
    const id = randomBytes(2).toString('hex');
    const crashed = `ppx${id}-${dead}-x`;
    const live = `ppx${id}-${process.pid}-y`;
    const foreign = `pixpool-netns-test-${id}`;
    const bridge = `ppx${id}br`;
    try {
      for (const ns of [crashed, live, foreign]) ip('netns', 'add', ns);
      ip('link', 'add', 'name', bridge, 'type', 'bridge');
      ip('link', 'set', bridge, 'alias', `pixpool-netns pid=${dead}`);
      const removed = removeLeftovers();
      assert.ok(removed.includes(`netns ${crashed}`), removed.join(', '));
      assert.ok(removed.includes(`link ${bridge}`), removed.join(', '));
      assert.doesNotMatch(namespaces(), new RegExp(crashed));
      assert.match(namespaces(), new RegExp(live));
      assert.match(namespaces(), new RegExp(foreign));
      assert.doesNotMatch(linkNames(), new RegExp(bridge));
      // This lab's own bridge and hosts are a live run's.
      assert.match(linkNames(), new RegExp(lab.bridge));
      assert.match(namespaces(), new RegExp(a.ns));
    } finally {
      for (const ns of [crashed, live, foreign]) spawnSync('ip', ['netns', 'delete', ns]);
      spawnSync('ip', ['link', 'delete', bridge]);
    }
  });

  it('destroy kills the processes in its namespaces and removes namespaces, veths and bridge', async () => {
    const pids = lab.hosts.flatMap((h) => ip('netns', 'pids', h.ns).split(/\s+/).filter(Boolean));
    assert.equal(pids.length, 3, 'one server per host');
    lab.destroy();
    for (const pid of pids) assert.equal(processAlive(Number(pid)), false, `pid ${pid} is gone`);
    for (const host of lab.hosts) assert.doesNotMatch(namespaces(), new RegExp(host.ns));
    assert.doesNotMatch(linkNames(), new RegExp(`ppx${lab.id}`));
  });

  it('says it needs root instead of skipping', () => {
    const getuid = process.getuid;
    process.getuid = () => 1000;
    try {
      assert.throws(requireRoot, /need root/);
    } finally {
      process.getuid = getuid;
    }
  });
});
