#!/usr/bin/env node
// The `pixpool` command. The sources are TypeScript run through tsx; there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
