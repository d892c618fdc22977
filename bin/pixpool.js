#!/usr/bin/env node
// The `pixpool` command. The sources are TypeScript that Node (≥ 22.18, 24 here) runs by
// stripping the types itself; there is no build step and no loader in the running services.
// On an older Node, tsx does the stripping instead.
if (!process.features.typescript) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('../src/cli.ts');
