// The image's HEALTHCHECK: GET /health of the service this container runs, on loopback; exit 0
// when it answers 200, 1 otherwise (with one line saying why, which `docker inspect` shows).
//
// One image runs any service, and Docker gives a HEALTHCHECK no way to follow the CMD, so this
// reads the service and its port from the service's own command line: PID 1 in the container
// (the services restart themselves in place, same pid), or PIXPOOL_HEALTH_PID, e.g. under an
// init that runs the service as a child. The port is --port when given, else the variable the
// service reads, else its default. PIXPOOL_HEALTH_URL names the URL outright instead.
// Over HTTPS the certificate is not checked: it names the host's address, not loopback, and a
// liveness check sends nothing secret.
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const PORTS = {
  frontend: ['PIXPOOL_FRONTEND_PORT', 5000],
  up: ['PIXPOOL_FRONTEND_PORT', 5000],
  'cache-node': ['PIXPOOL_NODE_PORT', 5001],
  manager: ['PIXPOOL_MANAGER_PORT', 5002],
  autoscaler: ['PIXPOOL_AUTOSCALER_PORT', 5003],
};

function fail(message) {
  console.error(`healthcheck: ${message}`);
  process.exit(1);
}

/** The value of `--name value` or `--name=value` in args. */
function flag(args, name) {
  for (const [i, arg] of args.entries()) {
    if (arg === name) return args[i + 1];
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
  }
  return undefined;
}

function targetUrl() {
  if (process.env.PIXPOOL_HEALTH_URL) return process.env.PIXPOOL_HEALTH_URL;
  const pid = process.env.PIXPOOL_HEALTH_PID ?? '1';
  let argv;
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
  } catch (error) {
    fail(`cannot read the command line of process ${pid}: ${error.message}`);
  }
  const script = argv.findIndex((arg) => /(^|\/)pixpool(\.js)?$/.test(arg));
  const args = script < 0 ? [] : argv.slice(script + 1);
  const service = args[0];
  const known = PORTS[service];
  if (!known) fail(`process ${pid} runs no pixpool service (${argv.join(' ').trim()})`);
  const [variable, fallback] = known;
  const port = flag(args, '--port') ?? process.env[variable] ?? fallback;
  const tls = flag(args, '--tls-cert') ?? process.env.PIXPOOL_TLS_CERT;
  return `${tls ? 'https' : 'http'}://127.0.0.1:${port}/health`;
}

const url = new URL(targetUrl());
const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
const request = send(url, { method: 'GET', timeout: 3000, rejectUnauthorized: false }, (answer) => {
  answer.resume();
  if (answer.statusCode === 200) process.exit(0);
  fail(`${url} answered ${answer.statusCode}`);
});
request.on('timeout', () => request.destroy(new Error('no answer within 3 s')));
request.on('error', (error) => fail(`${url}: ${error.message}`));
request.end();
