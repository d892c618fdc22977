/**
 * `npm run bench`: pixpool's benchmark runner. Finds (or installs) nginx, wrk and taskset, plans
 * which CPU the server under test and the load generator get, runs the cases of bench/cases.ts,
 * prints their tables and checks, and writes every figure to bench/out/<timestamp>.json.
 * Every process it starts is stopped at the end, on error, and on Ctrl-C.
 *
 *   npm run bench                     3 rounds × 10 s per side, 5 s warm-up
 *   npm run bench -- --quick          3 rounds × 2 s, 1 s warm-up (or BENCH_QUICK=1)
 *   npm run bench -- --help           all options
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cases } from './cases.ts';
import type { BenchContext, BenchSettings, CaseResult, CpuPlan } from './lib/case.ts';
import { nginxBuild } from './lib/nginx.ts';
import { allowedCpus, ProcessGroup } from './lib/processes.ts';
import { ensureTools, firstLine, type Tools } from './lib/tools.ts';

const HELP = `Usage: npm run bench -- [options]

  --quick             short run: 3 rounds × 2 s, 1 s warm-up (also BENCH_QUICK=1)
  --rounds <n>        rounds per side (default 3)
  --duration <s>      seconds per measured wrk run (default 10)
  --warmup <s>        seconds of warm-up per side before measuring (default 5)
  --connections <n>   wrk connections (default 32)
  --threads <n>       wrk threads (default 1)
  --case <id>         run only this case (repeatable); --list shows the ids; long cases
                      (soak: 10 minutes) run only when named
  --cpu-prof          run Node peers under --cpu-prof and summarize where time goes
  --before <dir>      another pixpool checkout (npm ci'd), measured beside this one as
                      "pixpool (before)" where a case supports it (hop-uniform,
                      variant-miss)
                      (slows them down: not for the ratio)
  --no-pin            do not pin the server and wrk to CPUs with taskset
  --strict            exit 2 when a case misses its target (advisory ones excepted)
  --list              list the cases and exit
  -h, --help          this help
`;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      case: { type: 'string', multiple: true },
      'cpu-prof': { type: 'boolean', default: false },
      before: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const quick = values.quick || ['1', 'true', 'yes'].includes(process.env.BENCH_QUICK ?? '');
  const number = (name: string, value: string | undefined, fallback: number, min: number) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}.`);
    return n;
  };
  return {
    values,
    quick,
    rounds: Math.floor(number('rounds', values.rounds, 3, 1)),
    durationSec: Math.floor(number('duration', values.duration, quick ? 2 : 10, 1)),
    warmupSec: Math.floor(number('warmup', values.warmup, quick ? 1 : 5, 0)),
    connections: Math.floor(number('connections', values.connections, 32, 1)),
    threads: Math.floor(number('threads', values.threads, 1, 1)),
  };
}

function cpuPlan(tools: Tools, noPin: boolean): CpuPlan {
  const allowed = allowedCpus();
  const [server, load] = allowed;
  if (noPin || !tools.taskset || server === undefined || load === undefined) {
    const why = noPin
      ? '--no-pin'
      : !tools.taskset
        ? 'no taskset on this machine'
        : `only ${allowed.length} CPU allowed`;
    return {
      pinned: false,
      server: undefined,
      load: undefined,
      description: `Not pinned (${why}): the server under test and wrk share the machine's CPUs as the OS schedules them.`,
    };
  }
  return {
    pinned: true,
    server: String(server),
    load: String(load),
    description: `CPUs: the server under test is pinned to CPU ${server} (taskset -c ${server}, the whole process: node with its GC and libuv threads, or nginx's master and worker), wrk to CPU ${load} (taskset -c ${load}); only one server is under load at a time, the other idles on the same CPU.`,
  };
}

function machine(tools: Tools) {
  let cpuModel = 'unknown';
  try {
    cpuModel =
      /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ??
      cpuModel;
  } catch {
    // not Linux
  }
  return {
    nproc: availableParallelism(),
    cpuModel,
    kernel: release(),
    node: process.version,
    nginx: nginxBuild(tools.nginx).version,
    wrk: /^wrk \S+/.exec(firstLine(tools.wrk, ['--version']) ?? '')?.[0] ?? 'wrk',
    loadavgAtStart: loadavg().map((n) => Number(n.toFixed(2))),
  };
}

/** A Markdown table with padded columns (readable as plain text too). */
export function markdownTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

function report(result: CaseResult): string {
  const checks = result.checks.map(
    (c) =>
      `${c.met ? 'MET' : 'NOT MET'}: ${c.name} = ${c.value.toFixed(2)} (target ${c.target}${c.advisory ? ', advisory: a later issue' : ''})`,
  );
  return [
    `## ${result.title} [${result.id}]`,
    '',
    markdownTable(result.table.head, result.table.rows),
    '',
    ...checks,
    '',
    'Fairness:',
    ...result.fairness.map((f) => `- ${f}`),
    '',
    'Notes:',
    ...result.notes.map((n) => (n.startsWith(' ') ? n : `- ${n}`)),
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const opts = options();
  if (opts.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (opts.values.list) {
    for (const c of cases) {
      process.stdout.write(`${c.id}\t${c.title}${c.optIn ? ' (only with --case)' : ''}\n`);
    }
    return 0;
  }
  const wanted = opts.values.case;
  const selected = wanted
    ? cases.filter((c) => wanted.includes(c.id))
    : cases.filter((c) => !c.optIn);
  const unknown = (wanted ?? []).filter((id) => !cases.some((c) => c.id === id));
  if (unknown.length > 0) throw new Error(`unknown case ${unknown.join(', ')}; see --list`);
  if (process.platform !== 'linux') throw new Error('the benchmark runs on Linux only.');

  const log = (line: string) =>
    process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const tools = ensureTools(log);
  const cpus = cpuPlan(tools, opts.values['no-pin']);
  const procs = new ProcessGroup(cpus.pinned ? tools.taskset : undefined);
  procs.installExitHandlers();
  const tmp = mkdtempSync(join(tmpdir(), 'pixpool-bench-'));
  procs.onShutdown(() => rmSync(tmp, { recursive: true, force: true }));

  const started = new Date();
  const stamp = started.toISOString().replace(/\..*$/, '').replaceAll(':', '-');
  const outDir = join(root, 'bench', 'out');
  const cpuProfDir = opts.values['cpu-prof'] ? join(outDir, `${stamp}-profiles`) : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  const settings: BenchSettings = {
    rounds: opts.rounds,
    durationSec: opts.durationSec,
    warmupSec: opts.warmupSec,
    threads: opts.threads,
    connections: opts.connections,
    cpuProfDir,
    beforeRoot: opts.values.before === undefined ? undefined : resolve(opts.values.before),
  };
  const ctx: BenchContext = { root, tmp, procs, tools, cpus, settings, log };
  const info = machine(tools);
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--'] : [])]
    .concat(process.argv.slice(2))
    .join(' ');
  const perCase = 2 * (settings.warmupSec + settings.rounds * settings.durationSec);
  log(
    `${command}: ${selected.length} case(s), about ${perCase} s of load each; ` +
      `${info.nproc} CPUs (${info.cpuModel}), Node ${info.node}, ${info.nginx}, ${info.wrk}`,
  );
  log(cpus.description);

  const results: CaseResult[] = [];
  const failures: { id: string; error: string }[] = [];
  try {
    for (const c of selected) {
      try {
        results.push(await c.run(ctx));
      } catch (error) {
        const message = (error as Error).stack ?? String(error);
        log(`${c.id} FAILED: ${message}`);
        failures.push({ id: c.id, error: message });
      }
    }
  } finally {
    await procs.shutdown();
  }

  const finished = new Date();
  process.stdout.write(
    [
      '',
      `# pixpool bench — ${started.toISOString()}`,
      `${info.nproc} CPUs, ${info.cpuModel}; Linux ${info.kernel}; Node ${info.node}; ${info.nginx}; ${info.wrk}`,
      `Settings: ${settings.rounds} rounds × ${settings.durationSec} s per side, ${settings.warmupSec} s warm-up, wrk -t${settings.threads} -c${settings.connections}.`,
      '',
      ...results.map(report),
      ...failures.map((f) => `## ${f.id}: FAILED\n\n${f.error}\n`),
    ].join('\n'),
  );
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `${stamp}.json`);
  const json = {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    command,
    machine: info,
    cpus,
    settings: { ...settings, cpuProfDir: cpuProfDir && relative(root, cpuProfDir) },
    results,
    failures,
  };
  writeFileSync(outFile, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`Figures written to ${relative(root, outFile)}\n`);

  if (failures.length > 0) return 1;
  if (opts.values.strict && results.some((r) => r.checks.some((c) => !c.met && !c.advisory)))
    return 2;
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exitCode = 1;
  },
);
