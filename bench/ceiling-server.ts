/**
 * The bare Node HTTP server of the node-ceiling case: `node bench/ceiling-server.ts <port> <file>
 * <content-type>` answers every request with the file's bytes, read once into a Buffer, through
 * node:http alone (no framework, no routing, no checks): the most a server answering through
 * node:http gets out of this machine. (The cache node answers its GETs below node:http.)
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
