/**
 * The manager's side of the nodes' view leases (src/cachenode/view.ts): which node processes may
 * still serve reads under a view this manager (or the one before it) gave them, and until when.
 *
 * A node asks for a renewal every `renewMs`; the manager grants `leaseMs` and records until when,
 * counted from its answer, so the record always ends after the node's own count (the node counts
 * from its request, a margin short). Pushes grant nothing: one may arrive late.
 *
 * The rule that keeps a cut-off node from serving regions that moved: before a view that takes
 * anything from a node is put in force, that node either took the view, or its lease is waited
 * out (views.ts). A holder that missed a push is revoked (no renewals) until a push reaches it.
 * Renewals are granted only to the very process the last push reached (its `instance`), for the
 * view it took, so a replaced or restarted node at the same id or address gets none.
 *
 * A restarted manager does not know what its predecessor granted: it assumes every node of the
 * saved pool holds a lease from when it starts (`assume`), and changes no ownership before
 * `startFloor` has passed.
 */
import type { NodeId } from '../../core/pool-map.ts';

export interface ViewLeasesOptions {
  leaseMs: number;
  /** A monotonic clock, ms. */
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

interface Holder {
  id: NodeId;
  url: string;
  /** The process that took the last push at `url`; undefined until one does. */
  instance: string | undefined;
  /** The map version that process took. */
  version: number;
  /** Until when (now()) a lease this manager may have granted runs. */
  until: number;
  /** Whether the last view it took names it (a node that left is pushed a view without it). */
  member: boolean;
  /** Missed a push: no renewals until a push reaches it. */
  revoked: boolean;
}

export type RenewAnswer = { leaseMs: number; renewMs: number } | { refused: string };

/** Between checks while a lease is waited out, ms. */
const WAIT_STEP_MS = 50;
/** A third of it between renewals: two renewals can be lost before a lease runs out. */
export const DEFAULT_VIEW_LEASE_MS = 3000;
export const MIN_VIEW_LEASE_MS = 300;
export const MAX_VIEW_LEASE_MS = 60_000;

/** Checks a view lease given as a flag or variable, in words a person can act on. */
export function parseViewLeaseMs(value: unknown): number {
  const ms = Number(value);
  if (value === '' || !Number.isInteger(ms) || ms < MIN_VIEW_LEASE_MS || ms > MAX_VIEW_LEASE_MS) {
    throw new Error(
      `The view lease must be a whole number of milliseconds from ${MIN_VIEW_LEASE_MS} to ${MAX_VIEW_LEASE_MS}; got ${JSON.stringify(value)}.`,
    );
  }
  return ms;
}

export function createViewLeases(options: ViewLeasesOptions) {
  const { leaseMs, now } = options;
  parseViewLeaseMs(leaseMs);
  const renewMs = Math.round(leaseMs / 3);
  const holders = new Map<string, Holder>();
  let startFloor = 0;

  const find = (id: NodeId, instance: string) => {
    for (const holder of holders.values()) {
      if (holder.id === id && holder.instance === instance) return holder;
    }
    return undefined;
  };

  return {
    leaseMs,
    renewMs,

    /** A node process at `url` took view `version` as `id` (member) or as a node that left. */
    took(url: string, id: NodeId, answer: { instance: string; version: number }, member: boolean) {
      const before = holders.get(url);
      holders.set(url, {
        id,
        url,
        instance: answer.instance,
        version: answer.version,
        // Whatever ran at this address before may still hold what it was granted.
        until: before?.until ?? 0,
        member,
        revoked: false,
      });
    },

    /** A node asks to renew its lease on view `version`. */
    renew(id: NodeId, instance: string, version: number): RenewAnswer {
      const holder = find(id, instance);
      if (!holder) {
        return {
          refused: `This manager has not given node ${id} (this process) a pool view: it was replaced or the manager restarted. The manager pushes it one when it answers.`,
        };
      }
      if (!holder.member) return { refused: `Node ${id} is no longer in the pool.` };
      if (holder.revoked) {
        return {
          refused: `Node ${id} missed a pool view; the manager waits for its lease to run out, then pushes it the current one.`,
        };
      }
      if (version !== holder.version) {
        return {
          refused: `Node ${id} holds map ${version}, but the manager gave it map ${holder.version}.`,
        };
      }
      holder.until = Math.max(holder.until, now() + leaseMs);
      return { leaseMs, renewMs };
    },

    /** At the start of a manager that resumes a saved pool: its predecessor's leases. */
    assume(nodes: { id: NodeId; url: string }[]): void {
      const until = now() + leaseMs;
      startFloor = until;
      for (const { id, url } of nodes) {
        if (!url || holders.has(url)) continue;
        holders.set(url, {
          id,
          url,
          instance: undefined,
          version: 0,
          until,
          member: true,
          revoked: false,
        });
      }
    },

    /**
     * At the start of a manager that resumes a saved pool: every node its predecessor could
     * have given a view either answers (and takes the next view) or is gone, so no lease of
     * its can be running: nothing to wait out before ownership changes.
     */
    liftFloor(): void {
      startFloor = 0;
    },

    /** Resolves once any lease a previous manager may have granted has run out. */
    async startFloor(): Promise<void> {
      for (let left = startFloor - now(); left > 0; left = startFloor - now()) {
        await options.sleep(Math.min(left, WAIT_STEP_MS));
      }
    },

    /**
     * Members whose lease may still run, at addresses other than `except`. A node told it left
     * serves nothing and gets no renewal: it is not counted, and forgotten once its lease ran.
     */
    live(except: ReadonlySet<string>): { id: NodeId; url: string }[] {
      const t = now();
      const found: { id: NodeId; url: string }[] = [];
      for (const [url, holder] of holders) {
        if (!holder.member) {
          if (holder.until <= t) holders.delete(url);
        } else if (!except.has(url) && holder.until > t) found.push({ id: holder.id, url });
      }
      return found;
    },

    /** Whether the process at `url` took view `version` or newer and is renewed. */
    current(url: string, version: number): boolean {
      const holder = holders.get(url);
      return !!holder && !holder.revoked && holder.version >= version;
    },

    /** The holder at `url` missed a push: no renewals for it until a push reaches it. */
    revoke(url: string): void {
      const holder = holders.get(url);
      if (holder) holder.revoked = true;
    },

    /** ms until the lease of the holder at `url` has run out (0: none runs). */
    left(url: string): number {
      const holder = holders.get(url);
      return holder ? Math.max(0, holder.until - now()) : 0;
    },

    /** The process at `url` is known to have exited (its provider stopped it): nothing to wait. */
    forget(url: string): void {
      holders.delete(url);
    },
  };
}

export type ViewLeases = ReturnType<typeof createViewLeases>;
