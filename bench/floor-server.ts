/**
 * The least Node program doing the hop-floor case's work (bench/cases/hop-floor.ts): a floor to
 * hold pixpool's figures against, not a product. Minimal on purpose: node:net only, no HTTP
 * library, no routing, no auth, no checks beyond what the case's requests need. It reads GET
 * heads only (a request body would be taken for the next head), ignores write backpressure,
 * and a client that pipelines requests to keys on different backends may get its answers out of
 * order (wrk and fetch do not pipeline).
 *
 *   node bench/floor-server.ts static <port> <bytes>
 *       answers every GET with body 0 (bench/lib/floor-bodies.ts): the hot image;
 *   node bench/floor-server.ts backend <port> <keys> <bytes> <index>/<count>
 *       holds body n for each n < keys with n % count = index, answers "GET /<n>";
 *   node bench/floor-server.ts relay <port> <backend-port>,… [--stream]
 *       answers "GET /…-<n>" by asking backend n % count for /<n> over one kept-alive connection
 *       per backend (opened at the first request, requests of one turn of the loop pipelined in
 *       one write), then writes head + body to the client: gathered into one Buffer first, or
 *       with --stream each chunk as it arrives.
 *
 * Each prints "floor <mode> listening on 127.0.0.1:<port>" once it listens.
 */
import { connect, createServer, type Socket } from 'node:net';
import { floorBody } from './lib/floor-bodies.ts';

const [mode, portArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
const END = Buffer.from('\r\n\r\n');
const REASON: Record<number, string> = { 200: 'OK', 404: 'Not Found', 502: 'Bad Gateway' };
const head = (status: number, length: number) =>
  `HTTP/1.1 ${status} ${REASON[status] ?? 'Status'}\r\ncontent-type: image/jpeg\r\ncontent-length: ${length}\r\n\r\n`;

/** Calls onRequest with each request's path, in order; a client's reset only closes its socket. */
function serve(onRequest: (client: Socket, path: string) => void): void {
  createServer({ noDelay: true }, (client) => {
    let pending = '';
    client.on('error', () => {});
    client.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      client.cork();
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const line = pending.slice(0, pending.indexOf('\r\n'));
        pending = pending.slice(end + 4);
        onRequest(client, line.split(' ')[1] ?? '');
      }
      client.uncork();
    });
  }).listen(port, '127.0.0.1', () => {
    console.log(`floor ${mode} listening on 127.0.0.1:${port}`);
  });
}

/** One kept-alive connection to a backend, the clients waiting on it in order, and its parser. */
class Backend {
  socket: Socket | undefined;
  readonly waiting: Socket[] = [];
  out = '';
  partial: Buffer | undefined;
  status = 0;
  length = -1; // -1: reading a head
  got = 0;
  body: Buffer | undefined;
  readonly port: number;
  readonly stream: boolean;
  constructor(port: number, stream: boolean) {
    this.port = port;
    this.stream = stream;
  }

  ask(client: Socket, n: number): void {
    if (!this.socket) this.open();
    this.waiting.push(client);
    this.out += `GET /${n} HTTP/1.1\r\nhost: backend\r\n\r\n`;
  }

  flush(): void {
    if (this.out === '') return;
    this.socket?.write(this.out, 'latin1');
    this.out = '';
  }

  open(): void {
    const socket = connect({ port: this.port, host: '127.0.0.1', noDelay: true });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      // Its clients can no longer be answered: close them; the next request reconnects.
      for (const client of this.waiting.splice(0)) client.destroy();
      this.socket = undefined;
      this.partial = undefined;
      this.length = -1;
    });
  }

  read(data: Buffer): void {
    let chunk = data;
    if (this.partial) {
      chunk = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let at = 0;
    while (at < chunk.length) {
      const client = this.waiting[0] as Socket;
      if (this.length < 0) {
        const end = chunk.indexOf(END, at);
        if (end < 0) {
          this.partial = chunk.subarray(at);
          return;
        }
        const text = chunk.toString('latin1', at, end);
        this.status = Number(text.slice(9, 12));
        this.length = Number(/content-length: *(\d+)/i.exec(text)?.[1] ?? 0);
        this.got = 0;
        at = end + 4;
        if (!this.stream) this.body = Buffer.allocUnsafe(this.length);
        else if (!client.destroyed) client.write(head(this.status, this.length), 'latin1');
      }
      const take = Math.min(this.length - this.got, chunk.length - at);
      if (this.stream) {
        if (take > 0 && !client.destroyed) client.write(chunk.subarray(at, at + take));
      } else {
        chunk.copy(this.body as Buffer, this.got, at, at + take);
      }
      this.got += take;
      at += take;
      if (this.got === this.length) {
        this.waiting.shift();
        if (!this.stream && !client.destroyed) {
          client.cork();
          client.write(head(this.status, this.length), 'latin1');
          client.write(this.body as Buffer);
          client.uncork();
        }
        this.body = undefined;
        this.length = -1;
      }
    }
  }
}

if (mode === 'static') {
  const body = floorBody(0, Number(rest[0]));
  const answer = head(200, body.length);
  serve((client) => {
    client.write(answer, 'latin1');
    client.write(body);
  });
} else if (mode === 'backend') {
  const [keys, bytes, share] = [Number(rest[0]), Number(rest[1]), rest[2] ?? '0/1'];
  const [index, count] = share.split('/').map(Number) as [number, number];
  const bodies = new Map<string, Buffer>();
  for (let n = index; n < keys; n += count) bodies.set(`/${n}`, floorBody(n, bytes));
  const answer = head(200, bytes);
  const missing = head(404, 0);
  serve((client, path) => {
    const body = bodies.get(path);
    if (!body) {
      client.write(missing, 'latin1');
      return;
    }
    client.write(answer, 'latin1');
    client.write(body);
  });
} else if (mode === 'relay') {
  const backends = (rest[0] ?? '')
    .split(',')
    .map((p) => new Backend(Number(p), rest.includes('--stream')));
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (const backend of backends) backend.flush();
  };
  serve((client, path) => {
    const n = Number(path.slice(path.lastIndexOf('-') + 1));
    if (path.lastIndexOf('-') < 0 || !Number.isInteger(n) || n < 0) {
      client.write(head(404, 0), 'latin1');
      return;
    }
    (backends[n % backends.length] as Backend).ask(client, n);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
} else {
  console.error('usage: floor-server.ts static|backend|relay <port> … (see the header)');
  process.exit(2);
}
