/**
 * The asset set on its own, over inject() with a throwaway folder: what both UIs rely on (the
 * shared files, hashed URLs, caching, ETags) and the mistakes it must refuse loudly.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createService } from '../service.ts';
import { createAssetSet } from './asset-set.ts';

const folders: string[] = [];
after(() => Promise.all(folders.map((dir) => rm(dir, { recursive: true, force: true }))));

async function folder(files: Record<string, string>): Promise<URL> {
  const dir = await mkdtemp(join(tmpdir(), 'pixpool-assets-'));
  folders.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return pathToFileURL(`${dir}/`);
}

describe('asset set', () => {
  it('serves the shared files, its folder and its extras under its prefix, by hash', async () => {
    const set = createAssetSet(
      await folder({ 'page.js': 'export {};', 'notes.txt': 'x' }),
      '/ui/',
      {
        extra: () => ({ 'vendor.js': Buffer.from('window.v = 1;') }),
      },
    );
    const { app } = createService({ service: 'asset-set-test' });
    set.register(app);
    await app.ready();

    assert.match(set.url('app.css'), /^\/ui\/app\.css\?v=[0-9a-f]{12}$/);
    const page = await app.inject(set.url('page.js'));
    assert.equal(page.statusCode, 200);
    assert.equal(page.body, 'export {};');
    assert.equal(page.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(page.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    const vendor = await app.inject('/ui/vendor.js');
    assert.equal(vendor.headers['cache-control'], 'public, max-age=300');
    const headers = { 'if-none-match': String(vendor.headers.etag) };
    assert.equal((await app.inject({ url: '/ui/vendor.js', headers })).statusCode, 304);
    assert.equal((await app.inject('/ui/icon.svg')).headers['content-type'], 'image/svg+xml');
    assert.equal((await app.inject('/ui/notes.txt')).statusCode, 404);
    assert.equal((await app.inject('/ui/nope.js')).statusCode, 404);
  });

  it('refuses a file named like a shared one, and a name that is not in the set', async () => {
    const clash = createAssetSet(await folder({ 'app.css': 'p {}' }), '/ui/');
    assert.throws(() => clash.load(), /Two assets named app\.css/);
    const set = createAssetSet(await folder({}), '/ui/');
    assert.throws(() => set.url('nope.js'), /No asset nope\.js/);
  });
});
