#!/usr/bin/env node
// The `pixpool` command. The sources are TypeScript that Node (≥ 22.18, 24 here) runs by
// stripping the types itself; there is no build step and no loader in the running services.
// On an older Node, tsx does the stripping instead.

// Some commands restart themselves in place (execve: same pid, same stdio) with V8 and glibc
// settings that suit what they do. Flags and MALLOC_* variables given by the user win; setting
// the command's variable (PIXPOOL_NODE_TUNED=1, PIXPOOL_FRONTEND_TUNED=1) skips the restart.
//
// - A cache node's memory is what it sells: V8 sized for memory rather than peak speed (a 1 MB
//   young generation, --optimize-for-size) and glibc limited to 2 malloc arenas. A full node
//   holds less RSS that way, for more CPU per cached GET and per fill: without --optimize-for-size
//   a node used ~60 % less CPU per miss, but a node filled through the seed JSON API then settles
//   above node-memory's target at every young-generation size tried (1, 2, 4 MB), and 2 or 4 MB
//   with it cost no less than 1 MB (bench/RESULTS.md, "the miss path, again"). Values of
//   68 KB and more get their own mapping (MALLOC_MMAP_THRESHOLD_), so an evicted image's memory
//   goes back to the system at once instead of leaving a hole in a malloc heap that allocations
//   of other sizes (the seed JSON API's base64 and JSON strings) do not fill, at no cost in fill
//   rate or in the GET's CPU. Not 64 KB: node:http copies each request body chunk it reads (up to
//   64 KB) into a fresh buffer, which at 64 KB got a mapping of its own, page faults and a
//   munmap (a TLB flush) each; from the heap they reuse the memory of the chunks before them.
// - The frontend (`frontend`, and `up`, which runs it) gets a floor under V8's old-generation
//   limit. Its JavaScript heap is small while its uploads churn through buffers, and V8 sizes the
//   limit so close above a small heap that full mark-compacts ran back to back under upload load;
//   with the floor they are rare and uploads go faster (bench/RESULTS.md, "Uploads: a
//   mark-compact every 200 ms, and the floor that stops it").
const frontend = { skip: 'PIXPOOL_FRONTEND_TUNED', flags: ['--initial-heap-size=128'], env: {} };
const tuning = {
  'cache-node': {
    skip: 'PIXPOOL_NODE_TUNED',
    flags: ['--max-semi-space-size=1', '--optimize-for-size'],
    env: { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '69632' },
  },
  frontend,
  up: frontend,
};
const tune = Object.hasOwn(tuning, process.argv[2] ?? '') ? tuning[process.argv[2]] : undefined;
if (tune && process.env[tune.skip] === undefined && typeof process.execve === 'function') {
  process.execve(
    process.execPath,
    [process.execPath, ...tune.flags, ...process.execArgv, ...process.argv.slice(1)],
    { ...tune.env, ...process.env, [tune.skip]: '1' },
  );
}

// Node's compile cache keeps each module's type-stripped source and compiled code on disk
// (NODE_COMPILE_CACHE, else <tmpdir>/node-compile-cache; NODE_DISABLE_COMPILE_CACHE=1 turns it
// off). Beyond a faster start, a process that finds all its modules there never loads the type
// stripper (swc, compiled to WebAssembly), whose memory would stay for the process's life (bench
// case node-memory).
// The first start on a machine fills it; the cache is flushed at exit and, for services that
// run until killed, once they are up.
const { enableCompileCache, flushCompileCache } = await import('node:module');
enableCompileCache?.();

if (!process.features.typescript) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { main } = await import('../src/cli.ts');
main();
setTimeout(() => flushCompileCache?.(), 10_000).unref();
