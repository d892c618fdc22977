/**
 * A server on a real socket for client tests: it frames requests by Content-Length (none: no
 * body), calls `onRequest` with each (the handler writes whatever answer it likes, or none), and
 * records them, its connections and its reads.
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

/** A request as the server read it: its head (request line and header lines) and its body. */
export interface Received {
  head: string;
  body: Buffer;
}

export async function rawServer(onRequest: (request: Received, socket: Socket, n: number) => void) {
  const received: Received[] = [];
  let connections = 0;
  let reads = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    socket.on('data', (data) => {
      reads++;
      buffered = Buffer.concat([buffered, data]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.toString('latin1', 0, end);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const request = { head, body: Buffer.from(buffered.subarray(end + 4, end + 4 + length)) };
        buffered = buffered.subarray(end + 4 + length);
        received.push(request);
        onRequest(request, socket, received.length);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    /** The heads received so far, in order. */
    get heads() {
      return received.map((r) => r.head);
    },
    connections: () => connections,
    reads: () => reads,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}
