/**
 * Where cache nodes come from. The manager decides *when* the pool changes; a provider only
 * brings a node up or takes it down: `local` spawns child processes on this host, `static` hands
 * out nodes from a list of URLs started elsewhere (one per host), and the engine providers (`ec2`,
 * `kubernetes`) ask an engine for a machine or pod whose node then announces itself.
 */
export interface ProvidedNode {
  id: string;
  url: string;
}

/**
 * What a node started by an engine says about itself when it announces itself to the manager
 * (POST /api/manager/nodes/register, behind the shared secret).
 */
export interface NodeClaim {
  /** Where the node serves, as the pool should reach it: an http(s) origin. */
  url: string;
  /** The engine's name for the node's machine: an EC2 instance id, a pod name. */
  ref: string;
}

/** A claim the engine does not back: the manager answers 403 with this message. */
export class ClaimRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClaimRefused';
  }
}

export interface NodeProvider {
  readonly name: string;
  /**
   * Whether a node this provider stops, replaces, or reports failed or replaced has exited by
   * then (it owns the processes), so its view lease needs no waiting out. A provider that
   * cannot know (nodes on other hosts) leaves it unset.
   */
  readonly endsReplaced?: boolean;
  /**
   * Whether nodes keep running when the manager stops (engine providers): close() stops none,
   * and only a shrink, a replacement or deletePool() ends one.
   */
  readonly outlivesManager?: boolean;
  /**
   * Brings one more node up (or activates one) and resolves once it listens. An engine provider
   * resolves once the node it asked for has announced itself and register() accepted it.
   */
  start(id: string): Promise<ProvidedNode>;
  /**
   * Engine providers only: checks a node's announcement against the engine (the instance or pod
   * exists, is running, carries this pool's tags or labels, and the URL names its address) and
   * resolves to the node it is: the one a pending start() waits for, or a node of the pool that
   * came back at a new address. Rejects with ClaimRefused for anything else, before the node
   * enters any view. Providers that start their own nodes leave it unset: nothing may register.
   */
  register?(claim: NodeClaim): Promise<ProvidedNode>;
  /**
   * Engine providers only: ends every node of this pool in the engine (pixpool delete-pool).
   * Resolves to what it ended, one line each, for the operator (none: there was nothing).
   */
  deletePool?(): Promise<string[]>;
  /** Takes a node down (or deactivates it); idempotent. */
  stop(id: string): Promise<void>;
  /**
   * At manager start: make the nodes the registry lists usable again. Returns each node's
   * (possibly new) URL, or undefined for a node that could not be brought back.
   */
  resume(nodes: ProvidedNode[]): Promise<(ProvidedNode | undefined)[]>;
  /**
   * Puts a fresh node in the place of `id`, which the manager found dead or hung (it failed its
   * health checks): the old one is killed or abandoned, the new one starts empty. Rejects when
   * there is nothing to replace it with; the manager then takes the node out of the map.
   */
  replace?(id: string): Promise<ProvidedNode>;
  /** Called at once when the provider sees a node die (a child process exits). */
  onFailed?(listener: (id: string, reason: string) => void): void;
  /**
   * The manager exits at once (a second stop signal, or its stop took too long): end the node
   * processes it owns now, without waiting, so none outlives an exit that was asked for. A crash
   * does not call it: nodes outlive a crashed manager, which adopts them when it comes back.
   */
  killNow?(): void;
  /**
   * Whether no process can still be listening at `url` (a node there holds no view lease):
   * only what the provider can prove, such as a refused connection on this host. Providers
   * that cannot tell leave it out, and a restarted manager waits out its predecessor's leases.
   */
  isGone?(url: string): Promise<boolean>;
  /** Called when a node dies unexpectedly and was replaced (its URL may have changed). */
  onReplaced(listener: (node: ProvidedNode) => void): void;
  close(): Promise<void>;
}
