/**
 * What the real `pixpool` command accepts, read from `node bin/pixpool.js <command> --help` (the
 * parser itself prints it), for the deploy tests: every command line and variable the deploy
 * files give a service must be one its parser knows.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliEnv } from '../helpers/processes.ts';

export const REPO = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

export interface CommandHelp {
  /** Each long flag, and whether it takes a value (`--port <port>`). */
  flags: Map<string, boolean>;
  /** The values a flag with choices accepts (`(choices: "a", "b")`). */
  choices: Map<string, string[]>;
  /** The environment variables the command reads (`(env: NAME)`). */
  env: Set<string>;
}

const helps = new Map<string, Promise<CommandHelp>>();

export function commandHelp(command: string): Promise<CommandHelp> {
  let help = helps.get(command);
  if (!help) {
    help = run(process.execPath, [join(REPO, 'bin', 'pixpool.js'), command, '--help'], {
      env: cliEnv() as NodeJS.ProcessEnv,
    }).then(({ stdout }) => {
      const flags = new Map<string, boolean>();
      // Only the options column: descriptions mention other flags too.
      const options = /^\s+(?:-\w, )?(--[a-z0-9-]+)(\s+[<[][^>\]]+[>\]])?/gm;
      for (const [, flag, value] of stdout.matchAll(options)) {
        flags.set(flag as string, value !== undefined);
      }
      // Each option's entry runs from its flag to the next one, wrapped over lines.
      const choices = new Map<string, string[]>();
      for (const entry of stdout.split(/\n(?=\s+-)/)) {
        const name = /^\s+(?:-\w, )?(--[a-z0-9-]+)/.exec(entry)?.[1];
        const listed = /choices: ((?:"[^"]*"(?:,\s+)?)+)/.exec(entry)?.[1];
        if (name && listed) {
          choices.set(
            name,
            [...listed.matchAll(/"([^"]*)"/g)].map((m) => m[1] as string),
          );
        }
      }
      const env = new Set(
        [...stdout.matchAll(/env:\s+([A-Z0-9_]+)\)/g)].map((m) => m[1] as string),
      );
      if (flags.size < 3) throw new Error(`pixpool ${command} --help lists no flags:\n${stdout}`);
      return { flags, choices, env };
    });
    helps.set(command, help);
  }
  return help;
}

/**
 * What is wrong with `pixpool <args>` (args[0] the command), by the real command's help: unknown
 * flags, a flag that needs a value without one, a stray argument. Empty when it parses.
 */
export async function commandLineProblems(args: string[]): Promise<string[]> {
  const [command, ...rest] = args;
  if (!command) return ['no command'];
  const { flags, choices } = await commandHelp(command);
  const problems: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (!arg.startsWith('--')) {
      problems.push(`${command}: ${arg} is not a flag (the command takes no arguments)`);
      continue;
    }
    const [flag, inline] = [arg.split('=')[0] as string, arg.includes('=')];
    const takesValue = flags.get(flag);
    const value = inline ? arg.slice(flag.length + 1) : rest[i + 1];
    const allowed = choices.get(flag);
    if (allowed && value !== undefined && !allowed.includes(value)) {
      problems.push(`${command}: ${flag} ${value} is not one of ${allowed.join(', ')}`);
    }
    if (takesValue === undefined) {
      problems.push(`${command}: unknown flag ${flag}`);
      // Its value, if it has one, is no separate problem.
      if (!inline && rest[i + 1] !== undefined && !rest[i + 1]?.startsWith('--')) i++;
    } else if (
      takesValue &&
      !inline &&
      (rest[i + 1] === undefined || rest[i + 1]?.startsWith('--'))
    )
      problems.push(`${command}: ${flag} needs a value`);
    else if (takesValue && !inline) i++;
    else if (!takesValue && inline) problems.push(`${command}: ${flag} takes no value`);
  }
  return problems;
}

/** The arguments after `pixpool.js` in a shell-like command line (no quoting used there). */
export function pixpoolArgs(commandLine: string): string[] | undefined {
  const words = commandLine.trim().split(/\s+/);
  const at = words.findIndex((word) => /(^|\/)pixpool(\.js)?$/.test(word));
  return at < 0 ? undefined : words.slice(at + 1);
}
