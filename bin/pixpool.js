#!/usr/bin/env node
// The `pixpool` command. The sources are TypeScript that Node (≥ 22.18, 24 here) runs by
// stripping the types itself; there is no build step and no loader in the running services.
// On an older Node, tsx does the stripping instead.

// A cache node's memory is what it sells, so `cache-node` restarts itself in place (execve: same
// pid, same stdio) with a leaner runtime: V8 sized for memory rather than peak speed (a 1 MB
// young generation, --optimize-for-size) and glibc limited to 2 malloc arenas. Filled with
// 100 KB values to 1.5 × a 256 MB capacity, that took RSS from ~420 to ~375 MB here (bench
// case node-memory), at the cost of ~15 % slower fills. Flags and MALLOC_* variables given by
// the user win; PIXPOOL_NODE_TUNED=1 skips this.
if (
  process.argv[2] === 'cache-node' &&
  process.env.PIXPOOL_NODE_TUNED === undefined &&
  typeof process.execve === 'function'
) {
  process.execve(
    process.execPath,
    [
      process.execPath,
      '--max-semi-space-size=1',
      '--optimize-for-size',
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { MALLOC_ARENA_MAX: '2', ...process.env, PIXPOOL_NODE_TUNED: '1' },
  );
}

if (!process.features.typescript) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('../src/cli.ts');
