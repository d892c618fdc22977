/**
 * TLS between pixpool's hosts: the files a process is given (`--tls-cert`, `--tls-key`,
 * `--tls-ca`), read and checked once at start, and what every part of the process takes from
 * them, so that its server and all its clients agree:
 *
 * - cert and key (both or neither): the service serves HTTPS, and the URLs it tells others
 *   (a node's to the manager, a frontend's registration) say https.
 * - ca: the one authority this process's clients trust for https peers. It replaces Node's
 *   built-in roots rather than adding to them, so only certificates the pool's own CA signed are
 *   accepted. Verification is never turned off: without a CA, https peers are checked against
 *   Node's roots.
 * - any of the three: the process is "on TLS", and a client refuses to send the shared secret or
 *   the admin token over plain http to anything but loopback (`guard`), so neither crosses a
 *   network in the clear. http on loopback stays allowed: `up` and tests on one machine.
 *
 * undici (the npm package) is loaded only when a CA is given: its fetch with an Agent that trusts
 * the CA. An Agent only works with the fetch of the undici copy that made it, not Node's built-in
 * one; and that fetch takes bodies as strings or bytes (all pixpool's clients send), not Node's
 * built-in FormData or Request. Without a CA, clients keep Node's built-in fetch, and a cache
 * node its memory.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { isLoopback } from './listen.ts';

/** Paths of the PEM files, as the flags (or PIXPOOL_TLS_*) give them; any may be absent. */
export interface TlsFiles {
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
}

export interface Tls {
  /** The files as absolute paths: what child processes are given (childEnv). */
  readonly files: TlsFiles;
  /** What https.createServer takes, when this process serves HTTPS. */
  readonly server: { cert: Buffer; key: Buffer } | undefined;
  /** The scheme of this process's own URLs. */
  readonly scheme: 'http' | 'https';
  /** undici `connect` options for a client's pools: the CA, when there is one. */
  readonly connect: { ca?: Buffer };
  /** fetch for every client of this process that uses fetch: verifies https peers as above. */
  readonly fetch: typeof fetch;
  /**
   * Throws, with one line naming `credential` and the peer, when a request to `url` would carry
   * it over plain http off this machine while this process is on TLS.
   */
  guard(url: string, credential: string): void;
  /** PIXPOOL_TLS_* for a child process (`up`'s autoscaler, the local provider's nodes). */
  childEnv(): Record<string, string | undefined>;
  close(): Promise<void>;
}

/** A process without TLS: plain servers, Node's fetch, no guard. */
export const NO_TLS: Tls = {
  files: {},
  server: undefined,
  scheme: 'http',
  connect: {},
  fetch: (input, init) => fetch(input, init),
  guard: () => {},
  childEnv: () => ({
    PIXPOOL_TLS_CERT: undefined,
    PIXPOOL_TLS_KEY: undefined,
    PIXPOOL_TLS_CA: undefined,
  }),
  close: async () => {},
};

function read(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${flag} ${path}: cannot read it (${(error as Error).message}).`);
  }
}

/** Every certificate in a PEM bundle, parsed: a file with none, or a broken one, is refused. */
function checkBundle(pem: Buffer, path: string): void {
  const blocks = pem
    .toString('latin1')
    .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
  if (!blocks) throw new Error(`--tls-ca ${path}: no PEM certificate in it.`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (error) {
      throw new Error(
        `--tls-ca ${path}: a certificate in it cannot be read (${(error as Error).message}).`,
      );
    }
  }
}

/**
 * Reads and checks the files: cert and key both or neither, each readable, the key the
 * certificate's, the CA a bundle of certificates. Every refusal is one line naming the flag.
 */
export async function loadTls(given: TlsFiles): Promise<Tls> {
  if (!given.cert && !given.key && !given.ca) return NO_TLS;
  if (Boolean(given.cert) !== Boolean(given.key)) {
    throw new Error(
      `--tls-cert and --tls-key go together (PIXPOOL_TLS_CERT, PIXPOOL_TLS_KEY): give both to serve HTTPS, or neither; got only ${given.cert ? '--tls-cert' : '--tls-key'}.`,
    );
  }
  const files: TlsFiles = {
    cert: given.cert && resolve(given.cert),
    key: given.key && resolve(given.key),
    ca: given.ca && resolve(given.ca),
  };
  let server: Tls['server'];
  if (files.cert && files.key) {
    server = { cert: read(files.cert, '--tls-cert'), key: read(files.key, '--tls-key') };
    try {
      // What the server would do with them at its first handshake, done now.
      createSecureContext(server);
    } catch (error) {
      throw new Error(
        `--tls-cert ${files.cert} and --tls-key ${files.key} are not a certificate and its private key (PEM): ${(error as Error).message}.`,
      );
    }
  }
  let ca: Buffer | undefined;
  let clientFetch: typeof fetch = NO_TLS.fetch;
  let close = NO_TLS.close;
  if (files.ca) {
    ca = read(files.ca, '--tls-ca');
    checkBundle(ca, files.ca);
    const undici = await import('undici');
    const agent = new undici.Agent({ connect: { ca } });
    // undici's Request and Response types are its own; the calls here use what both share.
    clientFetch = ((input: string | URL, init?: RequestInit) =>
      undici.fetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
    close = () => agent.close();
  }
  return {
    files,
    server,
    scheme: server ? 'https' : 'http',
    connect: ca ? { ca } : {},
    fetch: clientFetch,
    guard(url, credential) {
      const { protocol, hostname, origin } = new URL(url);
      if (protocol === 'http:' && !isLoopback(hostname.replace(/^\[(.*)\]$/, '$1'))) {
        throw new Error(
          `Refusing to send ${credential} to ${origin} over plain http: with TLS configured, a peer off this host must be https://.`,
        );
      }
    },
    childEnv: () => ({
      PIXPOOL_TLS_CERT: files.cert,
      PIXPOOL_TLS_KEY: files.key,
      PIXPOOL_TLS_CA: files.ca,
    }),
    close,
  };
}
