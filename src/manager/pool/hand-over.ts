/**
 * The hand-over of a resize: each node that loses regions sends their cached entries straight to
 * the regions' new owners (node to node; the manager only gives the orders), keeping them until
 * the final view, so reads of a moved region are served throughout.
 *
 * A failed order is not fatal: the regions' new owner starts cold for what did not arrive and
 * fills from storage. It is counted in the summary, which the resize's event shows.
 */
import type { NodeAdmin, RegionUsage } from '../../clients/node-admin.ts';
import { type NodeId, type PoolMap, planMoves } from '../../core/pool-map.ts';
import type { Journal } from './journal.ts';

export interface HandOverSummary {
  regions: number;
  entries: number;
  bytes: number;
  /** One line per sender whose orders failed, or receiver that refused. */
  failed: string[];
}

export interface HandOverDeps {
  admin: Pick<NodeAdmin, 'handOver' | 'regions'>;
  address: (id: NodeId) => string | undefined;
  journal: Journal;
  /** How long one sender may take for all its orders, ms. */
  timeoutMs: number;
}

/** The moves of prev → next, grouped by sender, then by receiver. */
function ordersBySender(prev: PoolMap, next: PoolMap): Map<NodeId, Map<NodeId, number[]>> {
  const bySender = new Map<NodeId, Map<NodeId, number[]>>();
  for (const { region, from, to } of planMoves(prev, next)) {
    const receivers = bySender.get(from) ?? new Map<NodeId, number[]>();
    receivers.set(to, [...(receivers.get(to) ?? []), region]);
    bySender.set(from, receivers);
  }
  return bySender;
}

/** Has every sender hand its moved regions over; resolves with what moved and what failed. */
export async function handOver(
  deps: HandOverDeps,
  prev: PoolMap,
  next: PoolMap,
): Promise<HandOverSummary> {
  const summary: HandOverSummary = {
    regions: planMoves(prev, next).length,
    entries: 0,
    bytes: 0,
    failed: [],
  };
  await Promise.all(
    [...ordersBySender(prev, next)].map(async ([from, receivers]) => {
      const url = deps.address(from);
      if (!url) return;
      const orders = [...receivers].map(([to, regions]) => ({
        to: deps.address(to) ?? to,
        regions,
      }));
      try {
        const answers = await deps.admin.handOver(url, orders, {
          keep: true,
          timeout: deps.timeoutMs,
        });
        for (const answer of answers) {
          summary.entries += answer.entries;
          summary.bytes += answer.bytes;
          if (!answer.error) continue;
          deps.journal.failed('hand-over', new Error(answer.error), { node: from, to: answer.to });
          summary.failed.push(`${from} → ${answer.to}: ${answer.error}`);
        }
      } catch (error) {
        deps.journal.failed('hand-over', error, { node: from });
        summary.failed.push(`${from}: ${(error as Error).message}`);
      }
    }),
  );
  return summary;
}

/**
 * Bytes cached in the regions that move, asked of their senders before the hand-over: what a
 * perfect hand-over would carry. A sender that does not say counts as 0 (and is reported).
 */
export async function bytesInMovedRegions(
  deps: Pick<HandOverDeps, 'admin' | 'address' | 'journal'>,
  prev: PoolMap,
  next: PoolMap,
): Promise<number> {
  const moves = planMoves(prev, next);
  const senders = [...new Set(moves.map((m) => m.from))];
  const usage = new Map<NodeId, RegionUsage[]>(
    await Promise.all(
      senders.map(async (id): Promise<[NodeId, RegionUsage[]]> => {
        const url = deps.address(id);
        try {
          return [id, url ? await deps.admin.regions(url) : []];
        } catch (error) {
          deps.journal.failed('measure-hand-over', error, { node: id });
          return [id, []];
        }
      }),
    ),
  );
  return moves.reduce(
    (sum, m) => sum + (usage.get(m.from)?.find((r) => r.region === m.region)?.bytes ?? 0),
    0,
  );
}
