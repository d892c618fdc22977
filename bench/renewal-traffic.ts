/**
 * What view leases cost on the wire in normal operation (issue 17): a manager (static provider,
 * embedded storage in a temp folder) and one cache node whose --manager-url goes through a TCP
 * proxy that counts the bytes each way. Statistics publishing is pushed out of the window, so
 * every byte counted is a renewal. Prints one JSON line.
 *
 *   node --import tsx bench/renewal-traffic.ts [seconds=20] [view-lease-ms=3000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../src/http/listen.ts';
import { startChildService } from '../src/process/child-service.ts';

const seconds = Number(process.argv[2] ?? 20);
const leaseMs = Number(process.argv[3] ?? 3000);
const dir = await mkdtemp(join(tmpdir(), 'pixpool-renewals-'));
const [managerPort, nodePort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
const env = { PIXPOOL_SECRET: 'bench-secret' };

const counted = { up: 0, down: 0, renewals: 0 };
let counting = false;
const proxy = createServer((client) => {
  const upstream = connect(managerPort, '127.0.0.1');
  client.on('data', (chunk: Buffer) => {
    if (counting) {
      counted.up += chunk.length;
      counted.renewals +=
        chunk.toString('latin1').split('POST /api/manager/nodes/renew').length - 1;
    }
    upstream.write(chunk);
  });
  upstream.on('data', (chunk: Buffer) => {
    if (counting) counted.down += chunk.length;
    client.write(chunk);
  });
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxyPort = (proxy.address() as { port: number }).port;

const node = await startChildService({
  args: [
    'cache-node',
    '--port',
    String(nodePort),
    '--manager-url',
    `http://127.0.0.1:${proxyPort}`,
    '--stats-interval-s',
    '3600',
    '--log-level',
    'warn',
  ],
  env,
  label: 'node',
  quiet: true,
});
const manager = await startChildService({
  args: [
    'manager',
    '--port',
    String(managerPort),
    '--data-dir',
    dir,
    '--provider',
    'static',
    '--node-urls',
    `http://127.0.0.1:${nodePort}`,
    '--view-lease-ms',
    String(leaseMs),
    '--log-level',
    'warn',
  ],
  env,
  label: 'manager',
  quiet: true,
});
await sleep(2000); // the first view pushed and renewed
counting = true;
await sleep(seconds * 1000);
counting = false;
console.log(
  JSON.stringify({
    seconds,
    leaseMs,
    renewals: counted.renewals,
    renewalsPerSecond: +(counted.renewals / seconds).toFixed(2),
    bytesPerRenewal: {
      request: Math.round(counted.up / counted.renewals),
      answer: Math.round(counted.down / counted.renewals),
    },
    bytesPerSecondPerNode: Math.round((counted.up + counted.down) / seconds),
  }),
);
await manager.stop();
await node.stop();
proxy.close();
await rm(dir, { recursive: true, force: true });
