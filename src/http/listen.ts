/** Listen-address helpers shared by the services' main.ts files. */
import { createServer } from 'node:net';

/** Whether a listen address is reachable only from this machine (auth may then be optional). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * A port that is free now, for a service that must know its own URL before it listens (the
 * manager hands it to the nodes it starts). Another process could take it in between; the
 * listen then fails loudly rather than silently using another port.
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The URL other services use to reach a service listening on host:port (https: over TLS). */
export function urlFor(host: string, port: number, scheme: 'http' | 'https' = 'http'): string {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${scheme}://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}
