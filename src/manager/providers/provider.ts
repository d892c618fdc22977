/**
 * Where cache nodes come from. The manager decides *when* the pool changes; a provider only
 * brings a node up or takes it down: `local` spawns child processes on this host, `static` hands
 * out nodes from a list of URLs started elsewhere (one per host), and a cloud provider can follow
 * the same interface.
 */
export interface ProvidedNode {
  id: string;
  url: string;
}

export interface NodeProvider {
  readonly name: string;
  /**
   * Whether a node this provider stops, replaces, or reports failed or replaced has exited by
   * then (it owns the processes), so its view lease needs no waiting out. A provider that
   * cannot know (nodes on other hosts) leaves it unset.
   */
  readonly endsReplaced?: boolean;
  /** Brings one more node up (or activates one) and resolves once it listens. */
  start(id: string): Promise<ProvidedNode>;
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
  /** Called when a node dies unexpectedly and was replaced (its URL may have changed). */
  onReplaced(listener: (node: ProvidedNode) => void): void;
  close(): Promise<void>;
}
