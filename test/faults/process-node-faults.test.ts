/**
 * Issue 8, a cache node dies under load: a manager with three real `pixpool cache-node`
 * processes (local provider), a frontend with its near cache off (every fetch asks a node), and
 * six loops fetching while a node is killed (SIGKILL: the manager sees its child exit) and then
 * while another hangs (SIGSTOP: alive but silent, only the health loop can tell). No fetch may
 * fail or return other bytes than the last upload; the manager must record the failure within
 * 5 s and show it on its dashboard, in the data it serves and in a real browser.
 *
 * Why 5 s holds with slack: a SIGKILLed child is reported by its 'exit' event at once; a hung
 * node fails two health checks of 1 s each, run back to back, after up to 1 s of waiting for
 * the next check: at most ~3 s, plus recording the event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { launchBrowser } from '../helpers/browser.ts';
import { startFrontend, type TestFrontend } from '../helpers/frontend.ts';
import { managerCall, startManager, type TestManager } from '../helpers/manager.ts';
import {
  type FetchLoad,
  fetchLoad,
  imageFor,
  pidOf,
  processAlive,
  sha256,
  uploadImage,
  waitFor,
} from '../helpers/processes.ts';

const KEYS = 60;
const NOTICE_MS = 5000;

interface LogEntry {
  at: string;
  kind: string;
  message: string;
}

describe('a cache node killed or hung under load', { timeout: 120_000 }, () => {
  let manager: TestManager;
  let frontend: TestFrontend;
  const expected = new Map<string, string>();

  before(async () => {
    manager = await startManager();
    for (let i = 0; i < 2; i++) {
      const grown = await managerCall(manager.url, 'POST', '/api/manager/poolsize/manual', {
        change: 'increase',
        wait: true,
      });
      assert.equal(grown.status, 200, JSON.stringify(grown.body));
    }
    frontend = await startFrontend({
      managerUrl: manager.url,
      metadata: manager.metadata,
      objects: manager.objects,
      nearCacheMb: 0,
    });
    for (let i = 0; i < KEYS; i++) {
      const bytes = imageFor(i);
      const uploaded = await uploadImage(frontend.url, `key-${i}`, bytes);
      assert.equal(uploaded.status, 200, JSON.stringify(uploaded.body));
      expected.set(`key-${i}`, sha256(bytes));
    }
    // Every key once, so the nodes hold them and the load reads from nodes.
    for (const key of expected.keys()) {
      assert.equal((await fetch(`${frontend.url}/images/${key}`)).status, 200);
    }
  });

  after(async () => {
    await frontend?.close();
    await manager?.close();
  });

  /** Polls the manager's events every 100 ms until one matches; resolves with when we saw it. */
  async function noticed(pattern: RegExp): Promise<{ seenAt: number; entry: LogEntry }> {
    const entry = await waitFor(
      `an event matching ${pattern}`,
      async () => {
        const { body } = await managerCall(manager.url, 'GET', '/api/manager/events?limit=20');
        return (body.content as LogEntry[]).find((e) => pattern.test(e.message));
      },
      { timeoutMs: 30_000, everyMs: 100 },
    );
    return { seenAt: Date.now(), entry };
  }

  async function underLoad<T>(fault: (load: FetchLoad) => Promise<T>): Promise<[T, FetchLoad]> {
    const load = fetchLoad(frontend.url, expected, 6);
    try {
      await waitFor('the load to run', () => load.ok > 20);
      return [await fault(load), load];
    } finally {
      await load.stop();
    }
  }

  it('SIGKILL: no fetch fails, the manager restarts the node within 5 s and the dashboard shows it', async () => {
    const { map, addresses } = manager.pool.view();
    const victim = map.nodes[1] as string;
    const oldUrl = addresses[victim] as string;
    const pid = await pidOf(oldUrl);

    const [timings, load] = await underLoad(async (load) => {
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      const failed = await noticed(new RegExp(`Node ${victim} .*exited \\(SIGKILL\\)`));
      const restarted = await noticed(new RegExp(`Node ${victim} died and was restarted`));
      // The frontend routes to the new address, and the load runs on for a while there.
      await waitFor('the frontend to adopt the new view', () =>
        frontend.routing.view.map.version > map.version ? true : undefined,
      );
      const okBefore = load.ok;
      await waitFor('more fetches after the restart', () => load.ok > okBefore + 100);
      return { noticedMs: failed.seenAt - killedAt, restartedMs: restarted.seenAt - killedAt };
    });
    console.log(
      `SIGKILL: noticed after ${timings.noticedMs} ms, restarted after ${timings.restartedMs} ms; ${load.ok} fetches, slowest ${load.slowestMs} ms`,
    );
    assert.deepEqual(load.failures, [], 'every fetch answered with the right bytes');
    assert.ok(timings.noticedMs <= NOTICE_MS, `noticed ${timings.noticedMs} ms after the kill`);

    const after = manager.pool.view();
    assert.deepEqual(after.map.nodes, map.nodes, 'the same ids: replaced in place');
    assert.notEqual(after.addresses[victim], oldUrl);
    assert.equal(processAlive(pid), false);

    // The data the dashboard reads: the event in its log, the node active again at its new address.
    const { body } = await managerCall(manager.url, 'GET', '/api/manager/dashboard');
    const messages = (body.content.log as LogEntry[]).map((e) => e.message);
    assert.ok(messages.some((m) => m.includes(`Node ${victim} died and was restarted`)));
    const row = (
      body.content.nodes as { id: string; address: string; state: string; healthy: boolean }[]
    ).find((n) => n.id === victim);
    assert.deepEqual(
      [row?.address, row?.state, row?.healthy],
      [after.addresses[victim], 'active', true],
    );

    // And the page an operator opens.
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(manager.url);
      const log = page.getByTestId('log');
      await log.getByText(`Node ${victim} died and was restarted`).first().waitFor();
      await log
        .getByText(new RegExp(`Node ${victim} .*exited \\(SIGKILL\\)`))
        .first()
        .waitFor();
      const nodeRow = page.getByTestId('nodes').locator('tr', { hasText: victim });
      await nodeRow.getByText(after.addresses[victim] as string).waitFor();
      assert.match(await nodeRow.innerText(), /active/);
    } finally {
      await browser.close();
    }
  });

  it('SIGSTOP: fetches fail over within the client timeout, the health loop replaces the hung node within 5 s', async () => {
    const { map, addresses } = manager.pool.view();
    const victim = map.nodes[2] as string;
    const oldUrl = addresses[victim] as string;
    const pid = await pidOf(oldUrl);
    try {
      const [timings, load] = await underLoad(async () => {
        const stoppedAt = Date.now();
        process.kill(pid, 'SIGSTOP');
        const failed = await noticed(
          new RegExp(`Node ${victim} .*failed 2 health checks in a row`),
        );
        await noticed(new RegExp(`Node ${victim} died and was restarted`));
        await waitFor('the frontend to adopt the new view', () =>
          frontend.routing.view.map.version > map.version ? true : undefined,
        );
        return { noticedMs: failed.seenAt - stoppedAt };
      });
      console.log(
        `SIGSTOP: noticed after ${timings.noticedMs} ms; ${load.ok} fetches, slowest ${load.slowestMs} ms`,
      );
      assert.deepEqual(load.failures, [], 'every fetch answered with the right bytes');
      assert.ok(timings.noticedMs <= NOTICE_MS, `noticed ${timings.noticedMs} ms after the stop`);
      // A read of the hung node gives up after the frontend's 1 s node timeout, then storage
      // answers: far from undici's default 300 s (generous bound for a loaded machine).
      assert.ok(load.slowestMs < 8000, `slowest fetch ${load.slowestMs} ms`);
      // The manager killed the hung process rather than leave it beside its replacement.
      await waitFor('the hung process to be gone', () => !processAlive(pid));
      assert.notEqual(manager.pool.view().addresses[victim], oldUrl);
    } finally {
      if (processAlive(pid)) {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      }
    }
  });
});
