/**
 * Runs the frontend as a process: opens storage (embedded by default, PostgreSQL and S3 when
 * configured), routes to the configured nodes, listens, and closes gracefully on SIGTERM/SIGINT.
 */
import { createNodeClient } from '../clients/node-client.ts';
import { isLoopback } from '../http/listen.ts';
import { openStorage, type StorageOptions } from '../storage/open.ts';
import { buildFrontend } from './app.ts';
import { createRouting, staticPoolView } from './routing.ts';

export interface FrontendOptions extends StorageOptions {
  host: string;
  port: number;
  /** Cache node URLs (a static pool until the manager pushes views). */
  nodes: string[];
  secret?: string | undefined;
  maxUploadMb: number;
  logLevel: string;
}

export async function runFrontend(options: FrontendOptions) {
  if (options.nodes.length === 0) {
    throw new Error('The frontend needs at least one cache node: --nodes http://host:5001,…');
  }
  if (!options.secret && !isLoopback(options.host)) {
    throw new Error(
      `Refusing to listen on ${options.host} without a shared secret: set PIXPOOL_SECRET, or bind to 127.0.0.1.`,
    );
  }
  const storage = await openStorage(options);
  const nodes = createNodeClient({ secret: options.secret, timeoutMs: 1000 });
  const app = await buildFrontend({
    ...storage,
    nodes,
    routing: createRouting(staticPoolView(options.nodes)),
    secret: options.secret,
    maxUploadMb: options.maxUploadMb,
    logger: { level: options.logLevel },
  });
  app.addHook('onClose', async () => {
    await nodes.close();
    await storage.close();
  });
  const address = await app.listen({ host: options.host, port: options.port });
  // Printed at every log level: supervisors (pixpool up) wait for this line.
  console.log(`frontend listening on ${address} (${storage.description})`);
  const stop = async (signal: string) => {
    app.log.info(`${signal}: finishing in-flight requests, then exiting`);
    await app.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  return { app, address };
}
