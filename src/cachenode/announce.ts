/**
 * A node started by an engine (an EC2 instance, a Kubernetes pod) announces itself to the
 * manager: where it serves, and the engine's name for its machine. The manager checks that claim
 * with the engine before the node enters any view (providers/provider.ts, register()), so the
 * shared secret alone does not let a process join the pool. Until the claim is accepted the node
 * asks again, so a manager that starts after its nodes, or restarts, still hears from them.
 *
 * Who the node is comes from the engine: EC2's instance metadata (IMDSv2) names the instance and
 * its private address; a pod learns its name from the downward API (POD_NAME) and is reached at
 * its stable DNS name, which the operator passes as --advertise-url.
 */
export type Engine = 'ec2' | 'kubernetes';

export interface Claim {
  url: string;
  ref: string;
}

export interface IdentityOptions {
  engine: Engine;
  /** The port the node listens on, and its scheme (https with TLS). */
  port: number;
  scheme: 'http' | 'https';
  /** Where the pool reaches this node, when the engine's own address is not it. */
  advertiseUrl?: string | undefined;
  /** Kubernetes: the pod's name (the downward API's POD_NAME). */
  podName?: string | undefined;
  /** EC2: the instance metadata endpoint (the SDK's default otherwise; tests set their own). */
  metadataEndpoint?: string | undefined;
}

/** What this node claims to be; throws (to be asked again) while the engine cannot tell. */
export async function engineClaim(options: IdentityOptions): Promise<Claim> {
  if (options.engine === 'kubernetes') {
    if (!options.podName) {
      throw new Error('no pod name: set POD_NAME from the downward API (metadata.name)');
    }
    if (!options.advertiseUrl) {
      throw new Error(
        "no --advertise-url: give the pod's stable DNS name under its headless Service",
      );
    }
    return { ref: options.podName, url: trimmed(options.advertiseUrl) };
  }
  // Loaded here: only a node on EC2 needs the SDK.
  const { MetadataService } = await import('@aws-sdk/ec2-metadata-service');
  const imds = new MetadataService({
    ...(options.metadataEndpoint && { endpoint: options.metadataEndpoint }),
    httpOptions: { timeout: 2000 },
    retries: 0,
  });
  // Paths without a leading slash: the SDK appends them to the endpoint's own path ('/').
  const instanceId = (await imds.request('latest/meta-data/instance-id', {})).trim();
  const url =
    options.advertiseUrl ??
    `${options.scheme}://${(await imds.request('latest/meta-data/local-ipv4', {})).trim()}:${options.port}`;
  return { ref: instanceId, url: trimmed(url) };
}

const trimmed = (url: string) => url.replace(/\/+$/, '');

export interface AnnouncerOptions {
  managerUrl: string;
  secret: string | undefined;
  claim: () => Promise<Claim>;
  log: { info(message: string): void; warn(message: string): void; error(message: string): void };
  /** The process's fetch (http/tls.ts: it verifies an https manager). */
  fetch?: typeof fetch;
  /** Waits between attempts, ms; the last one repeats. */
  retryMs?: number[];
}

const RETRY_MS = [500, 1000, 2000, 5000, 10_000];

/**
 * Announces until the manager accepts; resolves with the id the pool gives this node. Each
 * distinct failure is logged once: a refusal (403) as an error, since only an operator can fix
 * it (a missing tag or label), anything else as a warning.
 */
export function createAnnouncer(options: AnnouncerOptions) {
  const fetch = options.fetch ?? globalThis.fetch;
  const retryMs = options.retryMs ?? RETRY_MS;
  let stopped = false;
  let wake: (() => void) | undefined;
  let lastFailure: string | undefined;

  async function once(): Promise<string> {
    const claim = await options.claim();
    const response = await fetch(`${options.managerUrl}/api/manager/nodes/register`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.secret && { authorization: `Bearer ${options.secret}` }),
      },
      body: JSON.stringify({ url: claim.url, ref: claim.ref }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (!response.ok) {
      const message = (body.error as { message?: string } | undefined)?.message ?? '';
      throw Object.assign(new Error(`${response.status} ${message}`.trim()), {
        refused: response.status === 403,
      });
    }
    if (typeof body.node_id !== 'string') throw new Error('the answer names no node id');
    options.log.info(`the manager accepted this node as ${body.node_id} (${claim.url})`);
    return body.node_id;
  }

  async function run(): Promise<string | undefined> {
    for (let attempt = 0; !stopped; attempt++) {
      try {
        return await once();
      } catch (error) {
        const why = (error as Error).message;
        if (why !== lastFailure) {
          const line = `the manager at ${options.managerUrl} did not accept this node yet: ${why}`;
          if ((error as { refused?: boolean }).refused) options.log.error(line);
          else options.log.warn(line);
        }
        lastFailure = why;
      }
      const ms = retryMs[Math.min(attempt, retryMs.length - 1)] ?? 1000;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, ms).unref();
      });
    }
    return undefined;
  }

  let accepted: Promise<string | undefined> | undefined;
  return {
    /** Starts announcing; the promise resolves with the pool id, or undefined once stopped. */
    start(): Promise<string | undefined> {
      accepted ??= run();
      return accepted;
    },
    stop(): void {
      stopped = true;
      wake?.();
    },
  };
}
