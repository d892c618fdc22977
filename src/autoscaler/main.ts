/**
 * The autoscaler process (SPEC §6). For now a stub that reports the mode the manager is in: the
 * pool is resized by hand until the autoscaler's own issue brings the control loop.
 */
import { isLoopback } from '../http/listen.ts';
import { createService } from '../http/service.ts';

export interface AutoscalerOptions {
  host: string;
  port: number;
  managerUrl: string;
  adminToken?: string | undefined;
  logLevel: string;
}

export async function runAutoscaler(options: AutoscalerOptions) {
  if (!isLoopback(options.host) && !options.adminToken) {
    throw new Error(`Refusing to listen on ${options.host} without PIXPOOL_ADMIN_TOKEN.`);
  }
  const { app } = createService({ service: 'autoscaler', logger: { level: options.logLevel } });
  app.get('/status', async () => {
    let mode = 'unknown (the manager does not answer)';
    try {
      const response = await fetch(`${options.managerUrl}/api/manager/poolsize/config`, {
        headers: options.adminToken ? { authorization: `Bearer ${options.adminToken}` } : {},
        signal: AbortSignal.timeout(2000),
      });
      const body = (await response.json()) as { content?: { resize_pool_option?: string } };
      mode = body.content?.resize_pool_option ?? mode;
    } catch {}
    return {
      success: 'true',
      loop: 'not running',
      mode: 'manual',
      manager_mode: mode,
      message:
        'The automatic control loop is not built yet: the pool is resized by hand from the manager (manual mode).',
    };
  });
  const address = await app.listen({ host: options.host, port: options.port });
  console.log(
    `autoscaler listening on ${address} (manual mode: the control loop is not built yet)`,
  );
  const stop = async () => {
    await app.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  return { app, address };
}
