/**
 * The `pixpool` command: one subcommand per service, each flag mirrored by an environment
 * variable (the flag wins). This file and the services' main.ts are the only places that read
 * the process environment. Every numeric or enumerated flag has a parser (process/flags.ts, or
 * the check the service itself applies), so a bad value, from a flag or its variable, stops the
 * command with one line naming the flag before anything starts, and each action hands its
 * service typed options. Each command imports its service only when it runs, so a cache node
 * does not load (or hold in memory) the storage drivers or the AWS SDK.
 */
import { Command, Option } from 'commander';
import type { AutoscalerOptions } from './autoscaler/main.ts';
import type { Engine } from './cachenode/announce.ts';
import { parseLeaseMs } from './cachenode/leases.ts';
import type { CacheNodeOptions } from './cachenode/main.ts';
import { MAX_WINDOW_S } from './core/autoscale-state.ts';
import { localCapacityLimitMb, parseCapacityMb, parsePolicy } from './core/cache-config.ts';
import { DEFAULT_LEASE_MS } from './core/node-protocol.ts';
import { ASSIGNMENTS } from './core/pool-map.ts';
import type { FrontendOptions } from './frontend/main.ts';
import { type FrontendTuning, frontendTuning } from './frontend/tuning.ts';
import { DEFAULT_MAX_PIXELS, DEFAULT_SIZES, parseSizes } from './frontend/variants/spec.ts';
import { loadTls, type Tls } from './http/tls.ts';
import { parseNamespace, parseRegion } from './manager/cloudwatch-data.ts';
import type { ManagerOptions, ProviderChoice } from './manager/main.ts';
import { DEFAULT_VIEW_LEASE_MS, parseViewLeaseMs } from './manager/pool/view-leases.ts';
import {
  checkEc2Settings,
  DEFAULT_BOOT_TIMEOUT_MS,
  DEFAULT_POOL_NAME,
  EC2_MODES,
  type Ec2Mode,
  type Ec2Settings,
  parsePoolName,
} from './manager/providers/ec2-options.ts';
import { parseKubeApiUrl } from './manager/providers/kubernetes-pods.ts';
import {
  days,
  fromValidator,
  LOG_LEVELS,
  type LogLevel,
  list,
  megabytes,
  onOff,
  port,
  readableFile,
  seconds,
  wholeNumber,
} from './process/flags.ts';
import { DEFAULT_GRACE_MS, DEFAULT_INTERVAL_MS } from './storage/gc.ts';
import type { StorageOptions } from './storage/open.ts';
import type { UpOptions } from './up/main.ts';
import { MAX_WORKERS } from './up/workers.ts';

// What each action receives from commander: plain commander does not infer it, so these state
// it, and the parser on each numeric or enumerated flag makes it true.
interface StorageFlags {
  dataDir: string;
  databaseUrl?: string;
  s3Bucket?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3ForcePathStyle?: true;
}
interface TlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}
type CacheNodeFlags = TlsFlags &
  Omit<CacheNodeOptions, 'capacityMb' | 'tls' | 'announce'> & {
    capacity: number;
    announce?: Engine;
    advertiseUrl?: string;
    podName?: string;
    ec2MetadataUrl?: string;
  };
type AutoscalerFlags = TlsFlags & Omit<AutoscalerOptions, 'tls'>;
type FrontendFlags = TlsFlags &
  StorageFlags &
  Required<FrontendTuning> &
  Pick<
    FrontendOptions,
    'host' | 'port' | 'nodes' | 'managerUrl' | 'advertiseUrl' | 'secret' | 'adminToken'
  > & {
    logLevel: LogLevel;
    socketLanes: boolean;
    openCourseApi: boolean;
    reusePort?: true;
    ownPort: number;
    exitWithParent?: true;
  };
type GcFlags = StorageFlags & { graceS: number; dryRun?: true; json?: true };
type ManagerFlags = TlsFlags &
  StorageFlags &
  ProviderFlags &
  Pick<ManagerOptions, 'host' | 'port' | 'secret' | 'adminToken' | 'assignment'> & {
    logLevel: LogLevel;
    historyDays: number;
    viewLeaseMs: number;
    cloudwatchNamespace?: string;
    cloudwatchRegion?: string;
  };
type ProviderFlags = Pick<ManagerOptions, 'provider' | 'nodeUrls'> &
  Ec2Flags & {
    kubeNamespace?: string;
    kubeStatefulset: string;
    kubeService?: string;
    kubeApiUrl?: string;
    kubeTokenFile?: string;
    kubeCaFile?: string;
  };
type DeletePoolFlags = ProviderFlags & { yes?: true };
interface Ec2Flags {
  poolName: string;
  ec2Mode: Ec2Mode;
  ec2LaunchTemplate?: string;
  ec2LaunchTemplateVersion?: string;
  ec2Asg?: string;
  ec2Region?: string;
  ec2BootTimeoutS: number;
}
type UpFlags = TlsFlags &
  StorageFlags &
  Required<FrontendTuning> &
  Pick<UpOptions, 'port' | 'managerPort' | 'autoscalerPort' | 'secret' | 'logLevel'> & {
    workers?: number;
    historyDays: number;
    socketLanes: boolean;
    openCourseApi: boolean;
    autoscaleIntervalS: number;
    autoscaleWindowS: number;
    autoscaleDryRun?: true;
  };

const ENGINES = ['ec2', 'kubernetes'] as const satisfies readonly Engine[];
const PROVIDERS = [
  'local',
  'static',
  'ec2',
  'kubernetes',
] as const satisfies readonly ManagerOptions['provider'][];

const program = new Command('pixpool').description(
  'pixpool: an elastic image cache. Run one service per subcommand, or `up` for all.',
);

const secretOption = () =>
  new Option(
    '--secret <secret>',
    'shared secret between pool services (Authorization: Bearer …); prefer the env variable, flags show in ps. Optional only on loopback',
  ).env('PIXPOOL_SECRET');
const logLevelOption = () =>
  new Option('--log-level <level>', 'how much to log')
    .env('PIXPOOL_LOG_LEVEL')
    .default('info')
    .choices(LOG_LEVELS);
const hostOption = (help: string) =>
  new Option('--host <host>', help).env('PIXPOOL_HOST').default('127.0.0.1');
const historyOption = () =>
  new Option(
    '--history-days <days>',
    'days the manager keeps the pool log (resizes, decisions, failures), old maps and frontends it no longer hears from',
  )
    .env('PIXPOOL_HISTORY_DAYS')
    .default(30)
    .argParser(days);
const socketLanesOption = () =>
  new Option(
    '--socket-lanes <on|off>',
    'answer the hottest reads on the socket, before node:http parses them; off: everything through node:http (same answers, more CPU), to rule the lanes out',
  )
    .env('PIXPOOL_SOCKET_LANES')
    .default(true, 'on')
    .argParser(onOff);
/** For a course grader, whose clients send no token (frontend/course-api.ts). */
const openCourseApiOption = () =>
  new Option(
    '--open-course-api [on|off]',
    "let anyone who reaches the frontend call the course test API it relays to the manager (POST /api/delete_all, configure_cache, getNumNodes, getRate) without the admin token; logs a warning. Off: the manager's rule, the token, optional only on loopback",
  )
    .env('PIXPOOL_OPEN_COURSE_API')
    .preset('on')
    .default(false, 'off')
    .argParser(onOff);
/** HTTPS and peer verification (http/tls.ts): the same three flags on every service. */
function tlsOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; with --tls-key)')
        .env('PIXPOOL_TLS_CERT')
        .argParser(readableFile),
    )
    .addOption(
      new Option('--tls-key <file>', "the private key of --tls-cert's certificate (PEM)")
        .env('PIXPOOL_TLS_KEY')
        .argParser(readableFile),
    )
    .addOption(
      new Option(
        '--tls-ca <file>',
        "CA certificates (PEM) that this process's clients verify https peers with, instead of Node's roots. With any --tls-* flag, the secret and admin token go to no plain-http peer off this host",
      )
        .env('PIXPOOL_TLS_CA')
        .argParser(readableFile),
    );
}
/** The TLS flags' files, read and checked (a bad pair or a bad file stops the command). */
const tlsFrom = (o: TlsFlags): Promise<Tls> =>
  loadTls({ cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa });
const portOption = (flags: string, help: string, env: string, fallback: number) =>
  new Option(flags, help).env(env).default(fallback).argParser(port);

/** Options choosing the storage backends: embedded by default, real when configured. */
function storageOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--data-dir <dir>', 'where embedded data lives (objects/, db/)')
        .env('PIXPOOL_DATA_DIR')
        .default('./data'),
    )
    .addOption(
      new Option(
        '--database-url <url>',
        'PostgreSQL connection string; unset: embedded SQLite in <data-dir>/pixpool.db',
      ).env('DATABASE_URL'),
    )
    .addOption(
      new Option(
        '--s3-bucket <bucket>',
        'S3 bucket for image objects; unset: the folder <data-dir>/objects',
      ).env('S3_BUCKET'),
    )
    .addOption(
      new Option('--s3-endpoint <url>', 'S3-compatible endpoint (MinIO, s3rver …); unset: AWS').env(
        'S3_ENDPOINT',
      ),
    )
    .addOption(new Option('--s3-region <region>', 'S3 region').env('S3_REGION'))
    .addOption(
      new Option('--s3-force-path-style', 'path-style S3 URLs (most S3-compatible servers)').env(
        'S3_FORCE_PATH_STYLE',
      ),
    );
}

function storageFrom(o: StorageFlags): StorageOptions {
  return {
    dataDir: o.dataDir,
    databaseUrl: o.databaseUrl,
    s3: o.s3Bucket
      ? {
          bucket: o.s3Bucket,
          endpoint: o.s3Endpoint,
          region: o.s3Region,
          forcePathStyle: Boolean(o.s3ForcePathStyle),
        }
      : undefined,
  };
}

/**
 * Where nodes come from, and each provider's settings: the same flags for `manager` and for
 * `delete-pool`, which ends the nodes that manager's provider runs.
 */
function providerOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--provider <name>',
        'where nodes come from: local (child processes), static (--node-urls), ec2 (--ec2-*) or kubernetes (a StatefulSet, --kube-*)',
      )
        .env('PIXPOOL_PROVIDER')
        .default('local')
        .choices(PROVIDERS),
    )
    .addOption(
      new Option('--node-urls <urls>', 'static provider: node URLs, comma-separated')
        .env('PIXPOOL_NODE_URLS')
        .default([], 'none')
        .argParser(list),
    )
    .addOption(
      new Option(
        '--pool-name <name>',
        "engine providers: the pool's name, the tag (or label) value on every node of this pool",
      )
        .env('PIXPOOL_POOL_NAME')
        .default(DEFAULT_POOL_NAME)
        .argParser(fromValidator(parsePoolName)),
    )
    .addOption(
      new Option(
        '--ec2-mode <mode>',
        'ec2 provider: launch (an instance per node from a launch template), instances (start and stop tagged pre-provisioned instances) or asg (size an Auto Scaling group)',
      )
        .env('PIXPOOL_EC2_MODE')
        .default('launch')
        .choices(EC2_MODES),
    )
    .addOption(
      new Option(
        '--ec2-launch-template <name|id>',
        'ec2 launch mode: the launch template; its user data runs pixpool cache-node --announce ec2',
      ).env('PIXPOOL_EC2_LAUNCH_TEMPLATE'),
    )
    .addOption(
      new Option(
        '--ec2-launch-template-version <version>',
        "ec2 launch mode: a version number, $Latest or $Default (default: the template's default)",
      ).env('PIXPOOL_EC2_LAUNCH_TEMPLATE_VERSION'),
    )
    .addOption(
      new Option('--ec2-asg <name>', 'ec2 asg mode: the Auto Scaling group to size').env(
        'PIXPOOL_EC2_ASG',
      ),
    )
    .addOption(
      new Option('--ec2-region <region>', "ec2 provider: the AWS region (default: the SDK's)").env(
        'PIXPOOL_EC2_REGION',
      ),
    )
    .addOption(
      new Option(
        '--ec2-boot-timeout-s <seconds>',
        'ec2 provider: how long a started instance has to announce its node before it is ended',
      )
        .env('PIXPOOL_EC2_BOOT_TIMEOUT_S')
        .default(DEFAULT_BOOT_TIMEOUT_MS / 1000)
        .argParser(seconds()),
    )
    .addOption(
      new Option(
        '--kube-namespace <ns>',
        "kubernetes provider: the StatefulSet's namespace (default: the manager's own, in a cluster)",
      ).env('PIXPOOL_KUBE_NAMESPACE'),
    )
    .addOption(
      new Option('--kube-statefulset <name>', 'kubernetes provider: the StatefulSet of cache nodes')
        .env('PIXPOOL_KUBE_STATEFULSET')
        .default('pixpool-node'),
    )
    .addOption(
      new Option(
        '--kube-service <name>',
        "kubernetes provider: the headless Service naming the pods (default: the StatefulSet's name)",
      ).env('PIXPOOL_KUBE_SERVICE'),
    )
    .addOption(
      new Option(
        '--kube-api-url <url>',
        "kubernetes provider: the API server (default: in-cluster, with the pod's service account)",
      )
        .env('PIXPOOL_KUBE_API_URL')
        .argParser(fromValidator(parseKubeApiUrl)),
    )
    .addOption(
      new Option('--kube-token-file <file>', 'with --kube-api-url: a bearer token file')
        .env('PIXPOOL_KUBE_TOKEN_FILE')
        .argParser(readableFile),
    )
    .addOption(
      new Option(
        '--kube-ca-file <file>',
        "with --kube-api-url: the CA of the API server's certificate",
      )
        .env('PIXPOOL_KUBE_CA_FILE')
        .argParser(readableFile),
    );
}

/** The ec2 provider's settings, checked together: a bad combination stops the command. */
function ec2From(o: Ec2Flags): Ec2Settings {
  return checkEc2Settings({
    mode: o.ec2Mode,
    launchTemplate: o.ec2LaunchTemplate,
    launchTemplateVersion: o.ec2LaunchTemplateVersion,
    asgName: o.ec2Asg,
    region: o.ec2Region,
    bootTimeoutMs: o.ec2BootTimeoutS * 1000,
  });
}

/** The provider flags as the manager (and delete-pool) take them; the ec2 ones checked. */
function providerFrom(o: ProviderFlags): ProviderChoice {
  return {
    provider: o.provider,
    nodeUrls: o.nodeUrls,
    poolName: o.poolName,
    ec2: o.provider === 'ec2' ? ec2From(o) : undefined,
    kubernetes: {
      namespace: o.kubeNamespace,
      statefulSet: o.kubeStatefulset,
      service: o.kubeService,
      apiUrl: o.kubeApiUrl,
      tokenFile: o.kubeTokenFile,
      caFile: o.kubeCaFile,
    },
  };
}

/** What tunes a frontend, for `frontend` and `up` alike: upload limit, near cache, orphan sweeps. */
function frontendOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--max-upload-mb <mb>', 'largest image accepted, MB')
        .env('MAX_UPLOAD_MB')
        .default(10)
        .argParser(megabytes()),
    )
    .addOption(
      new Option(
        '--near-cache-mb <mb>',
        "hot images kept in the frontend, served within the node's read lease, else revalidated; 0 = off",
      )
        .env('PIXPOOL_NEAR_CACHE_MB')
        .default(64)
        .argParser(megabytes({ orZero: true })),
    )
    .addOption(
      new Option('--gc-interval-s <seconds>', 'seconds between orphan-object sweeps; 0 = off')
        .env('PIXPOOL_GC_INTERVAL_S')
        .default(DEFAULT_INTERVAL_MS / 1000)
        .argParser(seconds({ orZero: true })),
    )
    .addOption(
      new Option(
        '--gc-grace-s <seconds>',
        'unreferenced objects younger than this are kept (uploads in flight)',
      )
        .env('PIXPOOL_GC_GRACE_S')
        .default(DEFAULT_GRACE_MS / 1000)
        .argParser(seconds({ orZero: true })),
    )
    .addOption(
      new Option(
        '--variant-sizes <sizes>',
        'comma-separated widths and heights (px) image variants may have; others round up to one',
      )
        .env('PIXPOOL_VARIANT_SIZES')
        .default([...DEFAULT_SIZES], DEFAULT_SIZES.join(','))
        .argParser(fromValidator(parseSizes)),
    )
    .addOption(
      new Option('--variant-max-pixels <pixels>', 'largest original a variant is made of, pixels')
        .env('PIXPOOL_VARIANT_MAX_PIXELS')
        .default(DEFAULT_MAX_PIXELS)
        .argParser(wholeNumber(1, 1_000_000_000)),
    )
    .addOption(
      new Option('--variant-concurrency <n>', 'image variants made at once (default: one per core)')
        .env('PIXPOOL_VARIANT_CONCURRENCY')
        .argParser(wholeNumber(1, 256)),
    );
}

program
  .command('cache-node')
  .description(
    'an in-memory cache node: key → image bytes with a byte capacity and LRU, RR or SIEVE',
  )
  .addOption(hostOption('address to listen on; 0.0.0.0 for other hosts (needs a secret)'))
  .addOption(
    portOption('--port <port>', 'port to listen on; 0 picks a free one', 'PIXPOOL_NODE_PORT', 5001),
  )
  .addOption(
    new Option('--capacity <mb>', 'capacity in MB (MiB) of image bytes')
      .env('PIXPOOL_CAPACITY_MB')
      .default(100)
      // The node's own check, with this machine's bound.
      .argParser(fromValidator((value) => parseCapacityMb(value, localCapacityLimitMb()))),
  )
  .addOption(
    new Option('--policy <policy>', 'replacement policy: LRU, RR (random) or SIEVE')
      .env('PIXPOOL_POLICY')
      .default('LRU')
      .argParser(fromValidator(parsePolicy)),
  )
  .addOption(
    new Option('--node-id <id>', 'stable id in statistics and logs; default host:port').env(
      'PIXPOOL_NODE_ID',
    ),
  )
  .addOption(
    new Option('--max-body-mb <mb>', 'largest request body accepted, MB')
      .env('PIXPOOL_MAX_BODY_MB')
      .default(64)
      .argParser(megabytes()),
  )
  .addOption(
    new Option('--manager-url <url>', 'manager to publish statistics to every 5 s').env(
      'PIXPOOL_MANAGER_URL',
    ),
  )
  .addOption(
    new Option('--stats-interval-s <seconds>', 'seconds between statistics samples')
      .env('PIXPOOL_STATS_INTERVAL_S')
      .default(5)
      .argParser(seconds()),
  )
  .addOption(
    new Option(
      '--lease-ms <ms>',
      'read leases for frontends, ms: a frontend serves its copy that long without asking; an upload of a key read that recently waits as long (0: none)',
    )
      .env('PIXPOOL_LEASE_MS')
      .default(DEFAULT_LEASE_MS)
      .argParser(fromValidator(parseLeaseMs)),
  )
  .addOption(
    new Option(
      '--announce <engine>',
      'started by an engine (ec2 or kubernetes): announce this node to --manager-url, which checks it with the engine before it joins the pool',
    )
      .env('PIXPOOL_ANNOUNCE')
      .choices(ENGINES),
  )
  .addOption(
    new Option(
      '--advertise-url <url>',
      "with --announce: where the pool reaches this node (default on ec2: the instance's private address; required on kubernetes: the pod's DNS name)",
    ).env('PIXPOOL_ADVERTISE_URL'),
  )
  .addOption(
    new Option('--pod-name <name>', 'with --announce kubernetes: this pod (the downward API)').env(
      'POD_NAME',
    ),
  )
  .addOption(
    new Option('--ec2-metadata-url <url>', 'with --announce ec2: the instance metadata endpoint')
      .env('PIXPOOL_EC2_METADATA_URL')
      .hideHelp(),
  )
  .addOption(socketLanesOption())
  .addOption(secretOption())
  .addOption(logLevelOption())
  .action(async (o: CacheNodeFlags) => {
    const tls = await tlsFrom(o);
    const { runCacheNode } = await import('./cachenode/main.ts');
    const { capacity, tlsCert: _cert, tlsKey: _key, tlsCa: _ca, ...rest } = o;
    const { announce: engine, advertiseUrl, podName, ec2MetadataUrl, ...node } = rest;
    await runCacheNode({
      ...node,
      capacityMb: capacity,
      tls,
      announce: engine && { engine, advertiseUrl, podName, metadataEndpoint: ec2MetadataUrl },
    });
  });

frontendOptions(
  storageOptions(
    program
      .command('frontend')
      .description(
        'the public service: upload, fetch and list images, web pages; routes to cache nodes',
      )
      .addOption(hostOption('address to listen on'))
      .addOption(portOption('--port <port>', 'port to listen on', 'PIXPOOL_FRONTEND_PORT', 5000))
      .addOption(
        new Option('--nodes <urls>', 'cache node URLs, comma-separated')
          .env('PIXPOOL_NODES')
          .default(['http://127.0.0.1:5001'], 'http://127.0.0.1:5001')
          .argParser(list),
      )
      .addOption(
        new Option('--manager-url <url>', 'the manager that owns the pool (replaces --nodes)').env(
          'PIXPOOL_MANAGER_URL',
        ),
      )
      .addOption(
        new Option(
          '--advertise-url <url>',
          'how the manager reaches this frontend; default from host and port',
        ).env('PIXPOOL_ADVERTISE_URL'),
      )
      .addOption(
        new Option(
          '--admin-token <token>',
          "the manager's admin token: callers of the course test API the frontend relays must send it (without it, that API is open on loopback only), and the frontend relays with it",
        ).env('PIXPOOL_ADMIN_TOKEN'),
      )
      .addOption(openCourseApiOption())
      .addOption(socketLanesOption())
      .addOption(
        new Option(
          '--reuse-port',
          'share --port with other frontends on this host (SO_REUSEPORT; Linux spreads connections over them); the manager then reaches this one at --own-port',
        ).env('PIXPOOL_REUSE_PORT'),
      )
      .addOption(
        portOption(
          '--own-port <port>',
          'with --reuse-port: a port only this frontend listens on, which it registers with the manager (pushed pool views, its own /metrics); 0 picks a free one',
          'PIXPOOL_OWN_PORT',
          0,
        ),
      )
      .addOption(
        new Option(
          '--exit-with-parent',
          'stop (gracefully) when stdin closes: for a supervisor that pipes it (pixpool up)',
        ).hideHelp(),
      )
      .addOption(secretOption())
      .addOption(logLevelOption()),
  ),
).action(async (o: FrontendFlags) => {
  const tls = await tlsFrom(o);
  const { runFrontend } = await import('./frontend/main.ts');
  await runFrontend({
    tls,
    managerUrl: o.managerUrl,
    advertiseUrl: o.advertiseUrl,
    ...storageFrom(o),
    host: o.host,
    port: o.port,
    nodes: o.nodes,
    secret: o.secret,
    adminToken: o.adminToken,
    openCourseApi: o.openCourseApi,
    ...frontendTuning(o),
    socketLanes: o.socketLanes,
    logLevel: o.logLevel,
    reusePort: Boolean(o.reusePort),
    ownPort: o.ownPort,
    exitWithParent: Boolean(o.exitWithParent),
  });
});

storageOptions(
  program
    .command('gc')
    .description(
      'delete image objects no key points to (left by failed or interrupted uploads), once older than the grace',
    )
    .addOption(
      new Option(
        '--grace-s <seconds>',
        'keep unreferenced objects younger than this: they may be uploads in flight. Below a few minutes only on a stopped system',
      )
        .default(DEFAULT_GRACE_MS / 1000)
        .argParser(seconds({ orZero: true })),
    )
    .addOption(new Option('--dry-run', 'count what would be deleted, delete nothing'))
    .addOption(new Option('--json', 'print the report as one JSON object')),
).action(async (o: GcFlags) => {
  if (o.graceS < 300 && !o.dryRun) {
    console.error(
      `pixpool gc: a grace of ${o.graceS} s can delete the object of an upload in flight; use it only when no frontend is running.`,
    );
  }
  const { openStorage } = await import('./storage/open.ts');
  const { collectGarbage, describeGcReport } = await import('./storage/gc.ts');
  const storage = await openStorage(storageFrom(o));
  try {
    const report = await collectGarbage({
      objects: storage.objects,
      metadata: storage.metadata,
      graceMs: o.graceS * 1000,
      dryRun: Boolean(o.dryRun),
    });
    console.log(o.json ? JSON.stringify(report) : describeGcReport(report));
    if (report.failed > 0) process.exitCode = 1;
  } finally {
    await storage.close();
  }
});

storageOptions(
  providerOptions(
    program
      .command('manager')
      .description('the pool: resizing, node configuration, statistics and the dashboard')
      .addOption(
        hostOption(
          'address to listen on; beyond loopback it needs PIXPOOL_SECRET and PIXPOOL_ADMIN_TOKEN',
        ),
      )
      .addOption(portOption('--port <port>', 'port to listen on', 'PIXPOOL_MANAGER_PORT', 5002)),
  )
    .addOption(
      new Option(
        '--assignment <name>',
        "regions to nodes: balanced (moves the least) or modulo (the originals')",
      )
        .env('PIXPOOL_ASSIGNMENT')
        .default('balanced')
        .choices(ASSIGNMENTS),
    )
    .addOption(
      new Option('--admin-token <token>', "operators' token for the API and dashboard").env(
        'PIXPOOL_ADMIN_TOKEN',
      ),
    )
    .addOption(historyOption())
    .addOption(
      new Option(
        '--view-lease-ms <ms>',
        'how long a node serves reads under its pool view without hearing from the manager; a node cut off longer is given up, and its regions move only once that long has passed',
      )
        .env('PIXPOOL_VIEW_LEASE_MS')
        .default(DEFAULT_VIEW_LEASE_MS)
        .argParser(fromValidator(parseViewLeaseMs)),
    )
    .addOption(
      new Option(
        '--cloudwatch-namespace <namespace>',
        'also publish the statistics to CloudWatch under this namespace (e.g. pixpool); unset: not at all',
      )
        .env('PIXPOOL_CLOUDWATCH_NAMESPACE')
        .argParser(fromValidator(parseNamespace)),
    )
    .addOption(
      new Option(
        '--cloudwatch-region <region>',
        "CloudWatch's region; unset: the AWS SDK's (AWS_REGION, ~/.aws/config)",
      )
        .env('PIXPOOL_CLOUDWATCH_REGION')
        .argParser(fromValidator(parseRegion)),
    )
    .addOption(secretOption())
    .addOption(logLevelOption()),
).action(async (o: ManagerFlags) => {
  if (o.cloudwatchRegion && !o.cloudwatchNamespace) {
    throw new Error('--cloudwatch-region needs --cloudwatch-namespace, which turns CloudWatch on.');
  }
  const providers = providerFrom(o);
  const tls = await tlsFrom(o);
  const { runManager } = await import('./manager/main.ts');
  await runManager({
    tls,
    ...storageFrom(o),
    host: o.host,
    port: o.port,
    secret: o.secret,
    adminToken: o.adminToken,
    ...providers,
    assignment: o.assignment,
    historyDays: o.historyDays,
    viewLeaseMs: o.viewLeaseMs,
    logLevel: o.logLevel,
    ...(o.cloudwatchNamespace && {
      cloudwatch: { namespace: o.cloudwatchNamespace, region: o.cloudwatchRegion },
    }),
  });
});

providerOptions(
  program
    .command('delete-pool')
    .description(
      "end every node of an engine pool (ec2, kubernetes) in its engine: the nodes the manager's provider with the same flags runs; stop the manager first",
    ),
)
  .addOption(new Option('--yes', 'delete without asking (needed when there is no terminal)'))
  .action(async (o: DeletePoolFlags) => {
    const choice = providerFrom(o);
    const { runDeletePool } = await import('./manager/delete-pool.ts');
    await runDeletePool({ ...choice, yes: Boolean(o.yes) });
  });

program
  .command('autoscaler')
  .description('resizes the pool by its miss rate when the manager is in automatic mode')
  .addOption(hostOption('address to listen on'))
  .addOption(portOption('--port <port>', 'port to listen on', 'PIXPOOL_AUTOSCALER_PORT', 5003))
  .addOption(
    new Option('--manager-url <url>', 'the manager')
      .env('PIXPOOL_MANAGER_URL')
      .default('http://127.0.0.1:5002'),
  )
  .addOption(
    new Option('--admin-token <token>', "the manager's admin token").env('PIXPOOL_ADMIN_TOKEN'),
  )
  .addOption(
    new Option('--interval-s <seconds>', 'seconds between decisions')
      .env('AUTOSCALE_INTERVAL_S')
      .default(60)
      .argParser(seconds()),
  )
  .addOption(
    new Option(
      '--window-s <seconds>',
      'seconds of statistics each decision looks at; also the cooldown after a resize',
    )
      .env('AUTOSCALE_WINDOW_S')
      .default(60)
      .argParser(seconds({ max: MAX_WINDOW_S })),
  )
  .addOption(
    new Option('--dry-run', 'decide and report on /status, but never ask for a resize').env(
      'AUTOSCALE_DRY_RUN',
    ),
  )
  .addOption(logLevelOption())
  .action(async (o: AutoscalerFlags) => {
    const tls = await tlsFrom(o);
    const { runAutoscaler } = await import('./autoscaler/main.ts');
    const { tlsCert: _cert, tlsKey: _key, tlsCa: _ca, ...rest } = o;
    await runAutoscaler({ ...rest, tls });
  });

frontendOptions(
  storageOptions(
    program
      .command('up')
      .description('run the whole system on this machine with embedded defaults')
      .addOption(portOption('--port <port>', 'frontend port', 'PIXPOOL_FRONTEND_PORT', 5000))
      .addOption(portOption('--manager-port <port>', 'manager port', 'PIXPOOL_MANAGER_PORT', 5002))
      .addOption(
        portOption('--autoscaler-port <port>', 'autoscaler port', 'PIXPOOL_AUTOSCALER_PORT', 5003),
      )
      .addOption(
        new Option(
          '--workers <n>',
          `frontend processes sharing --port, each with its own near cache; 1: one, in this process. Default: one per core, at most ${MAX_WORKERS} (Linux, FreeBSD: elsewhere a port cannot be shared, so 1)`,
        )
          .env('PIXPOOL_WORKERS')
          .argParser(wholeNumber(1, MAX_WORKERS)),
      )
      .addOption(
        new Option('--autoscale-interval-s <seconds>', "the autoscaler's seconds between decisions")
          .env('AUTOSCALE_INTERVAL_S')
          .default(60)
          .argParser(seconds()),
      )
      .addOption(
        new Option(
          '--autoscale-window-s <seconds>',
          "seconds of statistics each of the autoscaler's decisions looks at; also the cooldown after a resize",
        )
          .env('AUTOSCALE_WINDOW_S')
          .default(60)
          .argParser(seconds({ max: MAX_WINDOW_S })),
      )
      .addOption(
        new Option(
          '--autoscale-dry-run',
          'the autoscaler decides and reports on /status, but never asks for a resize',
        ).env('AUTOSCALE_DRY_RUN'),
      )
      .addOption(historyOption())
      .addOption(openCourseApiOption())
      .addOption(socketLanesOption())
      .addOption(secretOption())
      .addOption(logLevelOption()),
  ),
).action(async (o: UpFlags) => {
  const tls = await tlsFrom(o);
  const { runUp } = await import('./up/main.ts');
  await runUp({
    tls,
    ...storageFrom(o),
    port: o.port,
    managerPort: o.managerPort,
    autoscalerPort: o.autoscalerPort,
    workers: o.workers,
    autoscale: {
      intervalS: o.autoscaleIntervalS,
      windowS: o.autoscaleWindowS,
      dryRun: Boolean(o.autoscaleDryRun),
    },
    secret: o.secret,
    ...frontendTuning(o),
    historyDays: o.historyDays,
    socketLanes: o.socketLanes,
    openCourseApi: o.openCourseApi,
    logLevel: o.logLevel,
  });
});

// Added last, so they close each service's --help.
const WITHOUT_TLS = new Set(['gc', 'delete-pool']);
for (const command of program.commands) if (!WITHOUT_TLS.has(command.name())) tlsOptions(command);

/** The command, for bin/pixpool.js and for tests that drive one in this process. */
export { program };

/** Runs the command line; a failure is one line on stderr and exit code 1. */
export function main(argv: string[] = process.argv): void {
  program.parseAsync(argv).catch((error: Error) => {
    console.error(`pixpool: ${error.message}`);
    process.exit(1);
  });
}
