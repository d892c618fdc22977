/**
 * Graceful stop for a service process: on SIGTERM or SIGINT, finish what is in flight (the
 * caller's `close`, e.g. Fastify's close, which stops accepting and waits for open requests),
 * then exit 0. A second signal while closing exits at once.
 */
export function closeOnSignals(
  close: () => Promise<unknown>,
  log: (message: string) => void,
): void {
  let closing = false;
  const stop = async (signal: string) => {
    if (closing) process.exit(1);
    closing = true;
    log(`${signal}: finishing in-flight requests, then exiting`);
    try {
      await close();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
