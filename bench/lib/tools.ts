/**
 * The outside programs the benchmark needs — nginx, wrk, taskset — found on PATH (plus the sbin
 * folders, where Debian puts nginx), and installed with apt-get when missing and we are root.
 * Varnish, which only the hop case compares against, is found or installed on that case's demand.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Tools {
  nginx: string;
  wrk: string;
  /** undefined: no taskset (util-linux), so nothing is pinned. */
  taskset: string | undefined;
}

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin'];

export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...EXTRA_DIRS];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Whether missing Debian packages can be installed here: root with apt-get. */
const canInstall = () => process.getuid?.() === 0 && which('apt-get') !== undefined;

function aptInstall(packages: string[], log: (line: string) => void): void {
  log(`installing ${packages.join(', ')} with apt-get…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', ...packages], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env,
  });
}

/** Finds the tools; installs nginx-light and wrk from Debian when absent (root only). */
export function ensureTools(log: (line: string) => void): Tools {
  const missing: string[] = [];
  if (!which('nginx')) missing.push('nginx-light');
  if (!which('wrk')) missing.push('wrk');
  if (missing.length > 0) {
    if (!canInstall()) {
      throw new Error(
        `The benchmark needs ${missing.join(' and ')}; install with: sudo apt-get install -y ${missing.join(' ')}`,
      );
    }
    aptInstall(missing, log);
  }
  const nginx = which('nginx');
  const wrk = which('wrk');
  if (!nginx || !wrk) throw new Error('nginx or wrk is still missing after apt-get install.');
  return { nginx, wrk, taskset: which('taskset') };
}

/** First line of `command args…` (stdout+stderr), or undefined when it cannot run. */
export function firstLine(command: string, args: string[]): string | undefined {
  try {
    const out = execFileSync('sh', ['-c', '"$@" 2>&1', 'sh', command, ...args], {
      encoding: 'utf8',
    });
    return out.split('\n')[0]?.trim();
  } catch (error) {
    const out = String((error as { stdout?: unknown }).stdout ?? '');
    return out.split('\n')[0]?.trim() || undefined;
  }
}

export const VARNISH_INSTALL = 'sudo apt-get install -y varnish';

/**
 * varnishd's path, installing Debian's `varnish` when absent and we are root; otherwise (or when
 * the install fails) why not, with the command that installs it: a case then skips that peer.
 */
export function ensureVarnish(log: (line: string) => void): { varnishd: string } | { why: string } {
  const found = which('varnishd');
  if (found) return { varnishd: found };
  if (!canInstall())
    return { why: `varnishd is not installed; install it with: ${VARNISH_INSTALL}` };
  try {
    aptInstall(['varnish'], log);
  } catch (error) {
    return {
      why: `apt-get install -y varnish failed (${(error as Error).message.split('\n')[0]}); install it with: ${VARNISH_INSTALL}`,
    };
  }
  const installed = which('varnishd');
  return installed
    ? { varnishd: installed }
    : {
        why: `varnishd is still missing after apt-get install; install it with: ${VARNISH_INSTALL}`,
      };
}
