/**
 * Certificates for TLS tests, made with the `openssl` command in a temp folder: a certificate
 * authority, and server certificates it signs for 127.0.0.1 and localhost plus any other
 * addresses a test listens on (the network-namespace tests' 198.18.x.y). Each call makes a new
 * CA, so two calls give two authorities that do not trust each other (a "foreign" peer).
 *
 * Keys are P-256 (fast to make) and the certificates last two days: nothing here outlives a test.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL = process.env.OPENSSL ?? 'openssl';
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface TestCertificates {
  /** The folder holding every file below; removed by cleanup(). */
  dir: string;
  /** The CA's certificate (PEM): what clients are given as --tls-ca. */
  ca: string;
  /** A server certificate (PEM) signed by that CA, and its private key. */
  cert: string;
  key: string;
  /** Another certificate and key signed by the same CA, for `name` and `ips` of its own. */
  issue(name: string, ips?: string[]): Promise<{ cert: string; key: string }>;
  cleanup(): Promise<void>;
}

/**
 * A new CA and one server certificate for 127.0.0.1, ::1, localhost and `ips` (IPv4 or IPv6
 * addresses) and `dns` names.
 */
export async function makeCertificates(
  options: { ips?: string[]; dns?: string[]; name?: string } = {},
): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'pixpool-certs-'));
  const name = options.name ?? 'pixpool test';
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  await run(OPENSSL, [
    'req',
    '-x509',
    ...KEY,
    '-keyout',
    caKey,
    '-out',
    ca,
    '-days',
    '2',
    '-subj',
    `/CN=${name} CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let serial = 0;
  const issue = async (leaf: string, ips: string[] = [], dns: string[] = []) => {
    const base = join(dir, `${leaf}-${++serial}`);
    const [key, csr, cert, ext] = ['key', 'csr', 'pem', 'ext'].map(
      (suffix) => `${base}.${suffix}`,
    ) as [string, string, string, string];
    await run(OPENSSL, ['req', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${leaf}`]);
    const names = [
      ...['127.0.0.1', '::1', ...ips].map((ip) => `IP:${ip}`),
      ...['localhost', ...dns].map((host) => `DNS:${host}`),
    ];
    await writeFile(
      ext,
      `subjectAltName=${names.join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`,
    );
    await run(OPENSSL, [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca,
      '-CAkey',
      caKey,
      '-set_serial',
      String(Date.now() * 100 + serial),
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    return { cert, key };
  };
  const server = await issue(name, options.ips, options.dns);
  return {
    dir,
    ca,
    ...server,
    issue: (leaf, ips) => issue(leaf, ips),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
