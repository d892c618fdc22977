/**
 * The bare Node HTTP server of the node-ceiling case: `node bench/ceiling-server.ts <port> <file>
 * <content-type>` answers every request with the file's bytes, read once into a Buffer, through
 * node:http alone (no framework, no routing, no checks). What a cache node does on a hit, minus
 * everything pixpool adds: the most any Node server can get out of this machine.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [port, file, contentType] = process.argv.slice(2);
const body = readFileSync(file as string);
createServer((_request, response) => {
  response.writeHead(200, { 'content-type': contentType, 'content-length': body.length });
  response.end(body);
}).listen(Number(port), '127.0.0.1', () => {
  console.log(`ceiling server listening on http://127.0.0.1:${port}`);
});
