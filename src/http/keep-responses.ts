/**
 * What a graceful close leaves of a service's connections: those with a response in flight live
 * until it is written (service.ts installs it on every service's server; process/signals.ts
 * starts the close on SIGTERM).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { httpConnectionEvent, isLaneBusy } from './socket-lane.ts';

/**
 * Keeps a response that is still being written alive through a graceful close. Node's
 * `server.close()` (and Fastify's `forceCloseConnections: 'idle'`) destroys every connection
 * whose *request* has been read, even one still sending a large response to a slow reader,
 * which cuts it mid-body. This replaces the server's closeIdleConnections: only connections
 * with no response in flight are closed at once; the others are ended when their response is.
 */
export function keepResponsesOnClose(server: Server): void {
  const sockets = new Set<Socket>();
  const writing = new Map<Socket, number>();
  let closing = false;
  // An https server's TLS sockets, not the TCP sockets under them: requests arrive on those.
  server.on(httpConnectionEvent(server), (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      writing.delete(socket);
    });
  });
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    writing.set(socket, (writing.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (writing.get(socket) ?? 1) - 1;
      if (left > 0) writing.set(socket, left);
      else {
        writing.delete(socket);
        // end, not destroy: the bytes still in the kernel's buffer reach the reader.
        if (closing) socket.end();
      }
    });
  });
  server.closeIdleConnections = () => {
    closing = true;
    // A socket lane waiting for an answer ends its connection once it has written it.
    for (const socket of sockets) if (!writing.has(socket) && !isLaneBusy(socket)) socket.end();
  };
}
