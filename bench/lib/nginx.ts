/**
 * nginx as a baseline: a throw-away static file server under a temp prefix (its own config, pid,
 * error log and temp dirs), one worker, sendfile, keep-alive, no access log; never daemonized,
 * so the ProcessGroup can stop it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BenchContext } from './case.ts';
import type { HttpSide, HttpTarget } from './compare.ts';
import { type Child, freePort, type ProcessGroup, waitForHttp } from './processes.ts';

export interface NginxOptions {
  nginx: string;
  /** Folder for the config, pid, logs and temp dirs; created. */
  prefix: string;
  /** Folder served at /. */
  root: string;
  /** A path under root that must answer 200 before nginx counts as ready. */
  readyPath: string;
  /** Content-Type for files (the benchmark's files have no extension). */
  defaultType?: string;
  cpus?: string | undefined;
  workers?: number;
  /** Directives inside http {} (upstreams, cache paths); none for a static file server. */
  http?: string;
  /** Directives inside `location / {}` (e.g. proxy_pass); empty: serve files from root. */
  location?: string;
  /** Further locations inside server {} (e.g. a stub_status one). */
  server?: string;
  /** TCP_CORK around sendfile (default on, Debian's default; see nginxConfig). */
  tcpNopush?: boolean;
}

export interface Nginx {
  child: Child;
  port: number;
  baseUrl: string;
  config: string;
  version: string;
  stop(): Promise<void>;
}

/**
 * A folder under the run's temp dir holding `body` at `path`, for nginx to serve as the same
 * bytes at the same path as the server under test; returns the folder.
 */
export function staticRoot(
  ctx: BenchContext,
  name: string,
  path: string,
  body: Uint8Array,
): string {
  const root = join(ctx.tmp, name);
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), body);
  return root;
}

/** nginx's version ("nginx/1.22.1") and configure arguments, from `nginx -V` (printed on stderr). */
export function nginxBuild(nginx: string): { version: string; configure: string } {
  const text = execFileSync('sh', ['-c', '"$0" -V 2>&1', nginx], { encoding: 'utf8' });
  return { version: /nginx version: (\S+)/.exec(text)?.[1] ?? 'nginx', configure: text };
}

export function nginxConfig(options: {
  prefix: string;
  root: string;
  port: number;
  workers: number;
  defaultType: string;
  /** Temp-path directives whose module this build has. */
  tempModules: string[];
  asRoot: boolean;
  http?: string | undefined;
  location?: string | undefined;
  server?: string | undefined;
  tcpNopush?: boolean | undefined;
}): string {
  const { prefix } = options;
  const indent = (text: string | undefined, by: string) =>
    (text ?? '')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => `${by}${line}`)
      .join('\n');
  const http = indent(options.http, '  ');
  const server = indent(options.server, '    ');
  const location = options.location
    ? `location / {\n${indent(options.location, '      ')}\n    }`
    : 'location / { }';
  const temp = options.tempModules
    .map((module) => `  ${module}_temp_path ${join(prefix, `${module}_temp`)};`)
    .join('\n');
  return `# pixpool bench baseline: written by bench/lib/nginx.ts for one run.
${options.asRoot ? 'user root;\n' : ''}worker_processes ${options.workers};
daemon off;
master_process on;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;

events {
  worker_connections 1024;
}

http {
  access_log off;
  sendfile on;
  # Debian's default. It buys nginx a few % of throughput here, at the price of a ~40 ms p99:
  # TCP_CORK meets the client's delayed ACK on some responses (off: p99 ~2 ms, a bit fewer req/s).
  tcp_nopush ${options.tcpNopush === false ? 'off' : 'on'};
  tcp_nodelay on;
  keepalive_timeout 65s;
  # nginx closes a keep-alive connection after 1000 requests by default; the cache node never
  # does, so neither should the baseline.
  keepalive_requests 100000000;
  default_type ${options.defaultType};
  types { }
  client_body_temp_path ${join(prefix, 'client_body_temp')};
${temp}
${http}

  server {
    listen 127.0.0.1:${options.port};
    server_name _;
    root ${options.root};
    ${location}
${server}
  }
}
`;
}

export async function startNginx(group: ProcessGroup, options: NginxOptions): Promise<Nginx> {
  const { prefix } = options;
  mkdirSync(prefix, { recursive: true });
  const { version, configure } = nginxBuild(options.nginx);
  const tempModules = ['proxy', 'fastcgi', 'uwsgi', 'scgi'].filter(
    (module) => !configure.includes(`--without-http_${module}_module`),
  );
  const port = await freePort();
  const config = nginxConfig({
    prefix,
    root: options.root,
    port,
    workers: options.workers ?? 1,
    defaultType: options.defaultType ?? 'application/octet-stream',
    tempModules,
    asRoot: process.getuid?.() === 0,
    http: options.http,
    location: options.location,
    server: options.server,
    tcpNopush: options.tcpNopush,
  });
  const configFile = join(prefix, 'nginx.conf');
  writeFileSync(configFile, config);
  // -e: the error log before the config is read (the built-in default may not be writable).
  const child = group.spawn(
    'nginx',
    options.nginx,
    ['-p', prefix, '-c', configFile, '-e', join(prefix, 'error.log')],
    { cpus: options.cpus, logFile: join(prefix, 'stdout.log') },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}${options.readyPath}`, child, { timeoutMs: 15_000 });
  return {
    child,
    port,
    baseUrl,
    config,
    version,
    stop: async () => {
      // SIGQUIT would be graceful; the benchmark's connections are gone, so TERM is fine.
      await child.stop(3000);
    },
  };
}

/**
 * The peer every "server vs nginx" case compares against: one nginx worker on the server CPU,
 * serving `root` so that `path` answers the same bytes as the side under test.
 */
export function nginxBaseline(
  ctx: BenchContext,
  options: {
    prefix: string;
    root: string;
    path: string;
    contentType: string;
    headers: Record<string, string>;
  },
): HttpSide {
  return {
    label: 'nginx',
    async start(): Promise<HttpTarget> {
      const nginx = await startNginx(ctx.procs, {
        nginx: ctx.tools.nginx,
        prefix: join(ctx.tmp, options.prefix),
        root: options.root,
        readyPath: options.path,
        defaultType: options.contentType,
        cpus: ctx.cpus.server,
        workers: 1,
      });
      return {
        url: `${nginx.baseUrl}${options.path}`,
        headers: options.headers,
        pid: nginx.child.pid,
        command: `${nginx.version}: nginx -p <tmp>/${options.prefix} -c <tmp>/${options.prefix}/nginx.conf (worker_processes 1, sendfile on, keepalive, access_log off)`,
        stop: nginx.stop,
      };
    },
  };
}
