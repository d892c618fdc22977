/**
 * What a benchmark case is: an id, a title and run(ctx) → CaseResult. The runner (bench/run.ts)
 * gives every case the same context — processes, tools, CPU plan, timing settings — prints each
 * result's table and checks, and writes all results as JSON.
 */
import type { ProcessGroup } from './processes.ts';
import type { Tools } from './tools.ts';

export interface CpuPlan {
  /** Whether peers are pinned with taskset. */
  pinned: boolean;
  /** CPU list (taskset -c) for the server under test, e.g. "0"; undefined when not pinned. */
  server: string | undefined;
  /** CPU list for the load generator, e.g. "1". */
  load: string | undefined;
  /** One sentence for reports. */
  description: string;
}

export interface BenchSettings {
  rounds: number;
  durationSec: number;
  warmupSec: number;
  threads: number;
  connections: number;
  /** Write a --cpu-prof profile of Node peers into this folder (slows them down). */
  cpuProfDir: string | undefined;
  /**
   * --before: another checkout of pixpool (with its node_modules), measured beside this one as
   * "pixpool (before)" by the cases that support it (hop-uniform,
   * variant-miss), for a before/after in one run.
   */
  beforeRoot?: string | undefined;
}

export interface BenchContext {
  /** Project root. */
  root: string;
  /** Per-run temp folder, removed at the end. */
  tmp: string;
  procs: ProcessGroup;
  tools: Tools;
  cpus: CpuPlan;
  settings: BenchSettings;
  log(line: string): void;
}

export interface Check {
  name: string;
  value: number;
  /** e.g. "≥ 0.6" */
  target: string;
  met: boolean;
  /** A later issue's target, reported for tracking: --strict does not fail on it. */
  advisory?: boolean;
}

export interface CaseResult {
  id: string;
  title: string;
  /** How the comparison was kept fair, one sentence each. */
  fairness: string[];
  table: { head: string[]; rows: string[][] };
  checks: Check[];
  /** Anything else worth reading: warnings, per-round spread, bottleneck hints. */
  notes: string[];
  /** The raw figures, for the JSON file. */
  figures: unknown;
}

export interface BenchCase {
  id: string;
  title: string;
  /** Runs only when named with --case (a long case such as the 10-minute soak). */
  optIn?: boolean;
  run(ctx: BenchContext): Promise<CaseResult>;
}
