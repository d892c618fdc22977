/**
 * Parsers for the `pixpool` command's flags (src/cli.ts), for commander's argParser: each turns
 * the text of a flag, or of the environment variable it mirrors, into a typed value, or throws
 * commander's InvalidArgumentError saying what the flag accepts. Commander prints that as one
 * line naming the flag (and the variable) and exits 1, before any service starts.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import type { LevelWithSilent } from 'pino';

export const LOG_LEVELS = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
] as const satisfies readonly LevelWithSilent[];
export type LogLevel = (typeof LOG_LEVELS)[number];

export type FlagParser<T> = (value: string) => T;

/**
 * A domain validator (one that refuses with a message of its own, whatever its error class) as
 * a flag parser, so a flag checks exactly what the code behind it would.
 */
export function fromValidator<T>(validate: (value: string) => T): FlagParser<T> {
  return (value) => {
    try {
      return validate(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

// Plain decimals only: Number() alone would also take '', ' ', '0x10' and '1e3'.
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

function decimal(value: string, accepts: string, fits: (n: number) => boolean): number {
  const text = value.trim();
  const n = Number(text);
  if (!DECIMAL.test(text) || !Number.isFinite(n) || !fits(n)) {
    throw new InvalidArgumentError(`Expected ${accepts}.`);
  }
  return n;
}

/** A TCP port; 0 lets the system pick a free one. */
export const port: FlagParser<number> = (value) =>
  decimal(value, 'a port from 0 to 65535 (0 picks a free one)', (n) => {
    return Number.isInteger(n) && n <= 65535;
  });

/** A size in MB (MiB), above 0, or 0 and more when 0 means off. */
export function megabytes(options: { orZero?: boolean } = {}): FlagParser<number> {
  return options.orZero
    ? (value) => decimal(value, 'a number of MB, 0 or more', () => true)
    : (value) => decimal(value, 'a number of MB above 0', (n) => n > 0);
}

/** A duration in seconds, above 0 (and at most `max`), or 0 and more when 0 means off or none. */
export function seconds(options: { orZero?: boolean; max?: number } = {}): FlagParser<number> {
  const { orZero = false, max = Number.POSITIVE_INFINITY } = options;
  const accepts = `a number of seconds${orZero ? ', 0 or more' : ' above 0'}${max < Number.POSITIVE_INFINITY ? ` and at most ${max}` : ''}`;
  return (value) => decimal(value, accepts, (n) => (orZero || n > 0) && n <= max);
}

/** A whole number from `min` to `max` (a count, a number of pixels). */
export function wholeNumber(min: number, max: number): FlagParser<number> {
  return (value) =>
    decimal(
      value,
      `a whole number from ${min} to ${max}`,
      (n) => Number.isSafeInteger(n) && n >= min && n <= max,
    );
}

/** A number of days above 0. */
export const days: FlagParser<number> = (value) =>
  decimal(value, 'a number of days above 0', (n) => n > 0);

/** `on` or `off`, as a boolean. */
export const onOff: FlagParser<boolean> = (value) => {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new InvalidArgumentError('Expected on or off.');
};

/** A comma-separated list (of URLs, say), blanks dropped. */
export const list: FlagParser<string[]> = (value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** A path to a file this process can read (a certificate, a key). */
export const readableFile: FlagParser<string> = (value) => {
  let why: string | undefined;
  try {
    if (!statSync(value).isFile()) why = 'it is not a regular file';
    else accessSync(value, constants.R_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    why =
      code === 'ENOENT'
        ? 'there is no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : (error as Error).message;
  }
  if (why) throw new InvalidArgumentError(`Expected a readable file; ${why}.`);
  return value;
};
