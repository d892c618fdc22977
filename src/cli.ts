/**
 * The `pixpool` command: one subcommand per service, each flag mirrored by an environment
 * variable (the flag wins). This file and the services' main.ts are the only places that read
 * the process environment.
 */
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { runCacheNode } from './cachenode/main.ts';

const program = new Command('pixpool')
  .description('pixpool: an elastic image cache. Run one service per subcommand, or `up` for all.')
  .showHelpAfterError();

const secretOption = () =>
  new Option(
    '--secret <secret>',
    'shared secret between pool services (Authorization: Bearer …); prefer the env variable, flags show in ps. Optional only on loopback',
  ).env('PIXPOOL_SECRET');
const logLevelOption = () =>
  new Option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
    .env('PIXPOOL_LOG_LEVEL')
    .default('info');

program
  .command('cache-node')
  .description('an in-memory cache node: key → image bytes with a byte capacity and LRU or RR')
  .addOption(
    new Option('--host <host>', 'address to listen on; 0.0.0.0 for other hosts (needs a secret)')
      .env('PIXPOOL_HOST')
      .default('127.0.0.1'),
  )
  .addOption(
    new Option('--port <port>', 'port to listen on; 0 picks a free one')
      .env('PIXPOOL_NODE_PORT')
      .default(5001)
      .argParser(Number),
  )
  .addOption(
    new Option('--capacity <mb>', 'capacity in MB (MiB) of image bytes')
      .env('PIXPOOL_CAPACITY_MB')
      .default('100'),
  )
  .addOption(
    new Option('--policy <policy>', 'replacement policy: LRU or RR (random)')
      .env('PIXPOOL_POLICY')
      .default('LRU'),
  )
  .addOption(
    new Option('--node-id <id>', 'stable id in statistics and logs; default host:port').env(
      'PIXPOOL_NODE_ID',
    ),
  )
  .addOption(
    new Option('--max-body-mb <mb>', 'largest request body accepted, MB')
      .env('PIXPOOL_MAX_BODY_MB')
      .default('64'),
  )
  .addOption(secretOption())
  .addOption(logLevelOption())
  .action(async (o) => {
    await runCacheNode({ ...o, capacityMb: o.capacity });
  });

program
  .command('up')
  .description(
    'run the whole system on this machine with embedded defaults (today: one cache node)',
  )
  .addOption(
    new Option('--port <port>', 'cache node port')
      .env('PIXPOOL_NODE_PORT')
      .default(5001)
      .argParser(Number),
  )
  .addOption(secretOption())
  .addOption(logLevelOption())
  .action(async (o) => {
    const secret = o.secret || randomBytes(24).toString('base64url');
    const { address } = await runCacheNode({
      host: '127.0.0.1',
      port: o.port,
      capacityMb: 100,
      policy: 'LRU',
      secret,
      logLevel: o.logLevel,
      maxBodyMb: 64,
    });
    const auth = `-H 'Authorization: Bearer ${secret}'`;
    console.log(`
pixpool is up. The frontend and manager are not built yet, so "up" runs one cache node:

  cache node  ${address}   (LRU, 100 MB)   health: ${address}/health

Try it:
  curl -X PUT ${auth} -H 'Content-Type: image/png' --data-binary @some.png ${address}/v1/entries/cat
  curl ${auth} ${address}/v1/entries/cat -o cat.png
  curl ${auth} ${address}/api/cache/statistics

Stop with Ctrl-C.`);
  });

program.parseAsync().catch((error: Error) => {
  console.error(`pixpool: ${error.message}`);
  process.exit(1);
});
