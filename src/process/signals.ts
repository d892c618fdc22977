/**
 * Graceful stop for a service process: on SIGTERM, SIGINT or SIGHUP, finish what is in flight (the
 * caller's `close`, e.g. Fastify's close, which stops accepting, answers 503 to new requests on
 * kept-alive connections, closes idle connections and waits for open requests), then exit 0.
 *
 * The wait is bounded: a client that stalls mid-request (or a close that hangs) must not keep a
 * service alive forever, so after `graceMs` (10 s) the process exits 1 with a line saying so.
 * What that cuts is safe by construction: an upload is acknowledged only once its object and row
 * are durable, and no row points at an object before its put completed, so a cut write leaves
 * only an orphan (a partial new object, or a temp file of a replacement) for the garbage
 * collector. A second signal exits at once (1).
 */

export const DEFAULT_GRACE_MS = 10_000;

export function closeOnSignals(
  close: () => Promise<unknown>,
  log: (message: string) => void,
  options: {
    graceMs?: number;
    /** Runs just before an exit that cuts the close short (what must not outlive us). */
    onForcedExit?: () => void;
  } = {},
): void {
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  let closing = false;
  const exitNow = () => {
    options.onForcedExit?.();
    process.exit(1);
  };
  const stop = async (signal: string) => {
    if (closing) {
      console.error(`${signal} again: exiting now, in-flight requests are cut`);
      exitNow();
    }
    closing = true;
    log(`${signal}: finishing in-flight requests, then exiting`);
    // Printed whatever the log level: an operator must see why a stop took this long.
    setTimeout(() => {
      console.error(
        `${signal}: requests still open after ${graceMs / 1000} s; exiting without them`,
      );
      exitNow();
    }, graceMs).unref();
    let code = 0;
    try {
      await close();
    } catch (error) {
      console.error(`${signal}: closing failed: ${(error as Error).message}`);
      code = 1;
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // A closed terminal: children in their own process groups do not hear it, so stop them too.
  process.on('SIGHUP', () => void stop('SIGHUP'));
}
