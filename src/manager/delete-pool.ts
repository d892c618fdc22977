/**
 * `pixpool delete-pool`: ends every node of an engine pool (ec2, kubernetes) in its engine, as
 * the manager's provider finds them: by the pool's tag or label, so nothing else is touched.
 * Engine nodes outlive the manager (a SIGTERM stops none), so this is how a pool is taken down
 * for good; a manager still running would start nodes again, so stop it first. It asks before
 * ending anything, unless told --yes; with no terminal to ask on, it refuses instead.
 */
import { createInterface } from 'node:readline/promises';
import type { ProviderChoice } from './main.ts';
import { DEFAULT_POOL_NAME } from './providers/ec2-options.ts';
import { createEngineProvider, isEngineProvider } from './providers/engines.ts';

export interface DeletePoolOptions extends ProviderChoice {
  /** Delete without asking. */
  yes: boolean;
}

const WHY_NOT: Record<string, string> = {
  local: "the local provider's nodes are the manager's child processes and stop with it",
  static: 'the static provider only uses the nodes of --node-urls, which are run by you',
};

/** Asks on the terminal; false unless the answer is yes. */
async function confirmed(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(`${question} [y/N] `)).trim());
  } finally {
    terminal.close();
  }
}

/** What the provider's settings name, for the question and the report. */
function describePool(options: DeletePoolOptions, pool: string): string {
  if (options.provider === 'kubernetes') {
    const k = options.kubernetes;
    return `pool "${pool}" (StatefulSet ${k?.statefulSet ?? 'pixpool-node'}${k?.namespace ? ` in namespace ${k.namespace}` : ''})`;
  }
  const e = options.ec2;
  const where =
    e?.mode === 'asg' ? `, Auto Scaling group ${e.asgName}` : `, ec2 ${e?.mode ?? 'launch'} mode`;
  return `pool "${pool}" (instances tagged pixpool:pool=${pool}${where})`;
}

export async function runDeletePool(
  options: DeletePoolOptions,
  print: (line: string) => void = console.log,
): Promise<void> {
  const { provider: name } = options;
  if (!isEngineProvider(name)) {
    throw new Error(
      `delete-pool is for the engine providers (--provider ec2 or kubernetes); ${WHY_NOT[name] ?? `"${name}" is none`}, so there is nothing to delete.`,
    );
  }
  const pool = options.poolName ?? DEFAULT_POOL_NAME;
  const what = describePool(options, pool);
  if (!options.yes) {
    if (!process.stdin.isTTY) {
      throw new Error(`refusing to delete ${what} without confirmation: pass --yes.`);
    }
    if (!(await confirmed(`Delete every node of ${what}? Their cached images are lost.`))) {
      throw new Error(`${what} was not deleted.`);
    }
  }
  const provider = await createEngineProvider({ ...options, provider: name }, () => {});
  try {
    const ended = (await provider.deletePool?.()) ?? [];
    print(`deleted ${what}: ${ended.length === 0 ? 'it had no nodes' : 'ended'}`);
    for (const line of ended) print(`  ${line}`);
  } finally {
    await provider.close();
  }
}
