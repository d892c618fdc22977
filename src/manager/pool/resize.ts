/**
 * A resize by one node, step by step. Between the two views every region has one owner that
 * takes its writes and, for a moved region, its previous owner still serving reads, so no read
 * misses for what the hand-over carries and no upload is lost:
 *
 *   0. Grow: a new node is started, healthy and configured. Shrink: the last node is draining.
 *   1. Transitional view (map n+1): the new owners own their regions; old owners still serve.
 *   2. Hand-over: every old owner sends the moved regions' entries to their new owners.
 *   3. Final view (map n+2): old owners drop what they handed over.
 *   4. Shrink: only now, with nobody routing to it, is the node that left stopped.
 *
 * A step that fails throws: the pool stays in the last view it published (saved, so a restarted
 * manager resumes it), and the caller's queue goes on with the next job.
 */
import type { Clock } from '../../core/clock.ts';
import { conflict } from '../../core/errors.ts';
import { MIN_NODES, minimumRegionMoves, type NodeId, resizePoolMap } from '../../core/pool-map.ts';
import {
  bytesInMovedRegions,
  type HandOverDeps,
  type HandOverSummary,
  handOver,
} from './hand-over.ts';
import type { Journal } from './journal.ts';
import type { NodeLifecycle } from './node-lifecycle.ts';
import type { PoolViews } from './views.ts';

export interface ResizeDeps {
  views: PoolViews;
  lifecycle: Pick<NodeLifecycle, 'bringUp' | 'stop' | 'setState'>;
  admin: HandOverDeps['admin'];
  journal: Journal;
  clock: Clock;
  /** An id for a node that joins. */
  newNodeId: () => NodeId;
  /** How long one node may take to hand its regions over, ms. */
  handOverTimeoutMs: number;
}

export async function resizeByOne(deps: ResizeDeps, change: 1 | -1): Promise<void> {
  const { views, lifecycle, journal, clock } = deps;
  const started = clock.now();
  const prev = views.map;
  const n = prev.nodes.length;

  // 0. The node that joins, or the one that leaves.
  let joining: NodeId | undefined;
  let leaving: NodeId | undefined;
  if (change > 0) {
    joining = deps.newNodeId();
    await journal.event('resize', `Growing ${n} → ${n + 1}: starting node ${joining}`);
    try {
      views.setAddress(joining, (await lifecycle.bringUp(joining)).url);
    } catch (error) {
      await journal.event(
        'resize',
        `Growing failed: node ${joining} did not start (${(error as Error).message})`,
      );
      throw error;
    }
  } else {
    // Bounds are checked when a resize is queued; a dead node taken out since may leave one.
    if (n <= MIN_NODES) throw conflict(`The pool has ${n} node(s): it cannot shrink further.`);
    leaving = prev.nodes[n - 1] as NodeId;
    await journal.event('resize', `Shrinking ${n} → ${n - 1}: draining node ${leaving}`);
    await lifecycle.setState(leaving, 'draining');
  }
  const nodes = joining ? [...prev.nodes, joining] : prev.nodes.slice(0, -1);
  const up = clock.now();

  // 1. Transitional view. Not published (the map could not be saved): the pool stays as it was.
  // The census of the moved regions (what a perfect hand-over carries, for the report) only
  // asks the senders, which hold those entries whatever view they are in: it runs meanwhile.
  const next = resizePoolMap(prev, nodes);
  const handOverDeps = { ...deps, address: views.address, timeoutMs: deps.handOverTimeoutMs };
  const census = timed(clock, bytesInMovedRegions(handOverDeps, prev, next));
  let mapVersion: number;
  try {
    // A node marked down since `prev` was read numbered its view after it: so is this one.
    ({ version: mapVersion } = await views.adopt(next, prev.owner));
  } catch (error) {
    if (joining) {
      views.forget(joining);
      await lifecycle.stop(joining, 'failed');
    }
    if (leaving) await lifecycle.setState(leaving, 'active');
    throw error;
  }
  const transitional = clock.now();
  // The registry is advisory (setState never throws): recorded while the entries move.
  const activated = joining ? lifecycle.setState(joining, 'active') : undefined;

  // 2. Hand-over.
  const handOverStarted = clock.now();
  const moved = await handOver(handOverDeps, prev, next);
  const ended = clock.now();
  await activated;
  const { value: cached, ms: censusMs } = await census;
  const report: ResizeReport = {
    from: n,
    to: next.nodes.length,
    mapVersion,
    minimumRegions: minimumRegionMoves(prev.owner, next.nodes),
    cachedBytes: cached,
    ...moved,
    ms: ended - started,
    handOverMs: ended - handOverStarted,
    steps: {
      nodeMs: up - started,
      transitionalViewMs: transitional - up,
      censusMs,
      handOverMs: ended - handOverStarted,
      finalViewMs: 0,
    },
  };

  // 3. Final view. The event is written after it, with its time; a final view that fails
  // still leaves the event (the entries did move), and the error goes on to the caller.
  try {
    await views.adopt(resizePoolMap(next, next.nodes));
    report.steps.finalViewMs = clock.now() - ended;
  } finally {
    await journal.event('resize', describe(change > 0 ? 'Grew' : 'Shrank', report), report);
  }

  // 4. Stop the node that left.
  if (leaving) {
    views.forget(leaving);
    await lifecycle.stop(leaving);
  }
}

/** `promise`'s value and how long it took from now, ms. */
async function timed<T>(clock: Clock, promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const from = clock.now();
  const value = await promise;
  return { value, ms: clock.now() - from };
}

/** What a resize event's details hold (the dashboard and the benchmarks read them). */
export interface ResizeReport extends HandOverSummary {
  from: number;
  to: number;
  /** The transitional map's version. */
  mapVersion: number;
  /** The fewest regions any resize from `from` to `to` nodes could move. */
  minimumRegions: number;
  /** Bytes cached in the moved regions before the hand-over. */
  cachedBytes: number;
  /** From the start of the resize to the end of the hand-over, ms. */
  ms: number;
  handOverMs: number;
  /**
   * The resize's steps, ms: starting the node (or marking it draining), the transitional view,
   * the census (run during the transitional view), the hand-over, the final view (0 when it
   * failed). `ms` ends with the hand-over; the final view comes after it.
   */
  steps: {
    nodeMs: number;
    transitionalViewMs: number;
    censusMs: number;
    handOverMs: number;
    finalViewMs: number;
  };
}

function describe(kind: 'Grew' | 'Shrank', r: ResizeReport): string {
  const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
  const failed = r.failed.length ? `; ${r.failed.length} hand-over(s) failed` : '';
  return `${kind} to ${r.to} nodes in ${r.ms} ms (hand-over ${r.handOverMs} ms): ${r.regions} regions moved (minimum ${r.minimumRegions}), ${r.entries} entries / ${mb(r.bytes)} handed over of ${mb(r.cachedBytes)} cached in them${failed}`;
}
