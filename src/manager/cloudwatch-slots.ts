/**
 * The pool's statistics for CloudWatch, slot by slot: nodes sample on their own phase, so the
 * pool-wide data point of a slot (the `slotMs` from a multiple of `slotMs` since the epoch; 5 s,
 * the nodes' interval) sums every node's sample that falls in it. Counts are summed; items and
 * bytes are the sum over nodes of each node's last sample in the slot, as PoolStore.aggregate
 * sums them, so a 5-s bucket of the database and a slot here agree.
 *
 * When a slot is closed (its sums final and published):
 * - as soon as every node in the pool map has reported its last sample of the slot: a sample at
 *   `at` covering `intervalMs` means the node's next one is due at `at + intervalMs`, so once
 *   that is past the slot's end the node is done with it (with the nodes' 5-s interval, its
 *   first sample in a slot is also its last);
 * - otherwise `graceMs` after the slot's first sample reached the manager: a node that died,
 *   left, or whose id is not a pool member's (the static provider's nodes name themselves) is
 *   not waited for longer. The grace counts from arrival, on the manager's clock, not from the
 *   slot's end, so nodes whose clocks run behind, and the backlog a node sends after a manager
 *   outage, are summed like any other.
 * A sample whose slot is already closed is late: it is not summed (CloudWatch would average a
 * second pool data point of the slot with the first) and `add` says so. Closed slots are
 * remembered (`memory` of them), then everything older than the oldest remembered one is late.
 */
import type { Sample } from '../core/stats.ts';
import type { Totals } from './cloudwatch-data.ts';

export interface ClosedSlot extends Totals {
  /** The slot's start, ms since the epoch. */
  start: number;
  /** Nodes that reported in it. */
  nodes: number;
}

export interface SlotsOptions {
  slotMs: number;
  graceMs: number;
  /** Closed slots remembered, to tell a late sample (2000: about 3 h of 5-s slots). */
  memory?: number;
  /** Slots open at once at most; past it the oldest closes early. */
  maxOpen?: number;
}

interface Slot {
  start: number;
  openedAt: number;
  counts: { gets: number; hits: number; misses: number; puts: number };
  /** Per node: its last sample's time and gauges in the slot, and whether it is done. */
  nodes: Map<string, { at: number; items: number; bytes: number; done: boolean }>;
}

export function createSlots(options: SlotsOptions) {
  const { slotMs, graceMs, memory = 2000, maxOpen = 2000 } = options;
  const open = new Map<number, Slot>();
  const closed = new Set<number>();
  /** Slots starting below it are taken as closed (forgotten). */
  let floor = Number.NEGATIVE_INFINITY;

  function close(slot: Slot): ClosedSlot {
    open.delete(slot.start);
    closed.add(slot.start);
    if (closed.size > memory) {
      const oldest = Math.min(...closed);
      closed.delete(oldest);
      floor = Math.max(floor, oldest + 1);
    }
    let items = 0;
    let bytes = 0;
    for (const node of slot.nodes.values()) {
      items += node.items;
      bytes += node.bytes;
    }
    return { start: slot.start, nodes: slot.nodes.size, ...slot.counts, items, bytes };
  }

  const oldestFirst = (slots: Iterable<Slot>) => [...slots].sort((a, b) => a.start - b.start);

  return {
    /**
     * Sums a sample into its slot. `members`: the node ids of the pool map in force; `now`: the
     * manager's clock. Returns whether the sample was late, and the slots this closed.
     */
    add(
      nodeId: string,
      sample: Sample,
      members: readonly string[],
      now: number,
    ): { late: boolean; closed: ClosedSlot[] } {
      const start = Math.floor(sample.at / slotMs) * slotMs;
      if (start < floor || closed.has(start)) return { late: true, closed: [] };
      let slot = open.get(start);
      const done: ClosedSlot[] = [];
      if (!slot) {
        slot = {
          start,
          openedAt: now,
          counts: { gets: 0, hits: 0, misses: 0, puts: 0 },
          nodes: new Map(),
        };
        open.set(start, slot);
        if (open.size > maxOpen) done.push(close(oldestFirst(open.values())[0] as Slot));
      }
      slot.counts.gets += sample.gets;
      slot.counts.hits += sample.hits;
      slot.counts.misses += sample.misses;
      slot.counts.puts += sample.puts;
      const before = slot.nodes.get(nodeId);
      const finishes = sample.at + sample.intervalMs >= start + slotMs;
      if (!before || sample.at >= before.at) {
        slot.nodes.set(nodeId, {
          at: sample.at,
          items: sample.items,
          bytes: sample.bytes,
          done: finishes || (before?.done ?? false),
        });
      } else if (finishes) before.done = true;
      const all = members.length > 0 && members.every((id) => slot.nodes.get(id)?.done);
      if (all && open.has(start)) done.push(close(slot));
      return { late: false, closed: done };
    },

    /** Closes the slots whose grace has run out by `now`, oldest first. */
    due(now: number): ClosedSlot[] {
      return oldestFirst(open.values())
        .filter((slot) => slot.openedAt + graceMs <= now)
        .map(close);
    },

    /** Closes every open slot (the sink's stop), oldest first. */
    closeAll(): ClosedSlot[] {
      return oldestFirst(open.values()).map(close);
    },

    get open(): number {
      return open.size;
    },
  };
}
