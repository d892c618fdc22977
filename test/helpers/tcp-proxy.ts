/**
 * A TCP proxy for fault tests: put it between a service and its backend (PostgreSQL, S3), then
 * break the link for real.
 *
 * - cut(): the listener closes and every open connection is destroyed (RST-like: the peer sees
 *   ECONNRESET / "Connection terminated"), so new connections are refused (ECONNREFUSED).
 * - blackHole(): connections are accepted but nothing is forwarded any more, in either direction,
 *   on new or open connections: the peer waits until its own timeouts fire.
 * - restore(): listens again on the same port and forwards again; connections that lived
 *   through a black hole are destroyed first (their streams lost bytes, like a reset).
 * - recorded(): with `record`, every byte forwarded so far, both ways: what anyone on the network
 *   between the two would see (the TLS tests look for secrets in it).
 *
 * It listens on loopback unless told another address (`host`), e.g. a test bridge's address
 * that network namespaces reach (test/helpers/netns.ts).
 */
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** `host:port` of the proxy, for connection strings. */
  address: string;
  cut(): Promise<void>;
  blackHole(): void;
  restore(): Promise<void>;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Bytes forwarded so far, both ways, in the order they came (empty unless `record`). */
  recorded(): Buffer;
  close(): Promise<void>;
}

export async function startTcpProxy(
  target: { host: string; port: number },
  options: { record?: boolean; host?: string } = {},
): Promise<TcpProxy> {
  const host = options.host ?? '127.0.0.1';
  let mode: 'open' | 'black-hole' | 'cut' = 'open';
  let accepted = 0;
  const recorded: Buffer[] = [];
  const forward = (to: Socket, chunk: Buffer) => {
    if (mode !== 'open') return;
    if (options.record) recorded.push(chunk);
    to.write(chunk);
  };
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // destroyed on purpose, or the other side went away
  };
  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  const server = createServer((client) => {
    accepted++;
    track(client);
    if (mode !== 'open') return; // black hole: accepted, never answered
    const upstream = createConnection(target);
    track(upstream);
    // Forward only while open: in a black hole the bytes are swallowed.
    client.on('data', (chunk: Buffer) => forward(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => forward(client, chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;

  return {
    port,
    address: `${host}:${port}`,
    get accepted() {
      return accepted;
    },
    recorded: () => Buffer.concat(recorded),
    async cut() {
      mode = 'cut';
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      destroyAll();
      await closed;
    },
    blackHole() {
      mode = 'black-hole';
    },
    async restore() {
      if (mode === 'black-hole') destroyAll();
      if (!server.listening) await listen(port);
      mode = 'open';
    },
    async close() {
      mode = 'cut';
      destroyAll();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
