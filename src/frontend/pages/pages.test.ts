/**
 * The pages' server side without a browser: escaping, statuses, redirects, paging and failures,
 * over Fastify's inject() with in-memory deps. The browser test (test/frontend/pages.test.ts)
 * covers what a person sees; this one covers what is awkward to reach from a browser.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createService } from '../../http/service.ts';
import { escapeHtml, html, raw } from '../../http/web/html.ts';
import { type PagesDeps, registerPages } from './index.ts';

// A valid key (no slash, no whitespace) that breaks out of an attribute and opens a script.
const HOSTILE = `'"><script>alert(1)<script>&amp;`;

function fakeDeps(keys: string[], overrides: Partial<PagesDeps> = {}): PagesDeps {
  const sorted = [...keys].sort();
  const matching = (contains?: string) => sorted.filter((k) => !contains || k.includes(contains));
  return {
    getImage: async (key) =>
      keys.includes(key)
        ? { key, contentType: 'image/png', size: 2048, version: 3, updatedAt: new Date(0) }
        : undefined,
    listKeys: async ({ contains, limit, after }) => {
      const rest = matching(contains).filter((k) => !after || k > after);
      const page = rest.slice(0, limit);
      return { keys: page, next: rest.length > limit ? page.at(-1) : undefined };
    },
    countKeys: async (options) => matching(options?.contains).length,
    maxUploadMb: 10,
    ...overrides,
  };
}

async function pages(deps: PagesDeps) {
  const { app } = createService({ service: 'pages-test' });
  registerPages(app, deps);
  await app.ready();
  return app;
}

describe('html templates', () => {
  it('escape every interpolated value unless it is already html', () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&\``),
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&#96;',
    );
    const inner = html`<b>${'<i>'}</b>`;
    assert.equal(
      html`<p>${inner}${['<', raw('<br>')]}${false}${undefined}${3}</p>`.value,
      '<p><b>&lt;i&gt;</b>&lt;<br>3</p>',
    );
  });
});

describe('pages', () => {
  it('render a hostile key as text on the image page, the 404 page and the key list', async () => {
    const app = await pages(fakeDeps([HOSTILE]));
    for (const url of [
      `/image/${encodeURIComponent(HOSTILE)}`,
      `/keys`,
      `/image/${encodeURIComponent(`${HOSTILE}x`)}`,
    ]) {
      const response = await app.inject(url);
      assert.ok(!response.body.includes('<script>alert'), url);
      assert.ok(
        response.body.includes('&#39;&quot;&gt;&lt;script&gt;alert(1)&lt;script&gt;&amp;amp;'),
        url,
      );
    }
    const image = await app.inject(`/image/${encodeURIComponent(HOSTILE)}`);
    assert.ok(
      image.body.includes(`src="${escapeHtml(`/images/${encodeURIComponent(HOSTILE)}`)}?v=3"`),
    );
  });

  it('answer an unknown key with 404, an invalid one with 400 and the rule', async () => {
    const app = await pages(fakeDeps([]));
    const unknown = await app.inject('/image/nope');
    assert.equal(unknown.statusCode, 404);
    assert.match(unknown.body, /href="\/upload\?key=nope"/);
    const invalid = await app.inject('/image/two%20words');
    assert.equal(invalid.statusCode, 400);
    assert.match(invalid.body, /cannot contain whitespace/);
    assert.match(invalid.body, /1–128 characters/);
  });

  it('redirect the open-by-key form to the image page, percent-encoded', async () => {
    const app = await pages(fakeDeps([]));
    const response = await app.inject('/image?key=a%3Fb%23c');
    assert.equal(response.statusCode, 303);
    assert.equal(response.headers.location, '/image/a%3Fb%23c');
    assert.equal((await app.inject('/image?key=')).statusCode, 400);
  });

  it('page the key list by cursor, keeping the search in the next link', async () => {
    const keys = Array.from({ length: 120 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    const app = await pages(fakeDeps([...keys, 'other']));
    const first = await app.inject('/keys?q=k');
    assert.equal(first.body.match(/<li>/g)?.length, 50);
    assert.match(first.body, /120 keys contain “k”/);
    assert.match(first.body, /href="\/keys\?q=k&amp;after=k049" rel="next"/);
    const last = await app.inject('/keys?q=k&after=k099');
    assert.equal(last.body.match(/<li>/g)?.length, 20);
    assert.doesNotMatch(last.body, /rel="next"/);
    assert.match(last.body, /First page/);
  });

  it('show a 500 page, not a JSON envelope, when a dependency fails', async () => {
    const app = await pages(
      fakeDeps([], {
        countKeys: async () => {
          throw new Error('database down');
        },
      }),
    );
    const response = await app.inject('/');
    assert.equal(response.statusCode, 500);
    assert.match(String(response.headers['content-type']), /^text\/html/);
    assert.doesNotMatch(response.body, /database down/);
    assert.equal(response.headers['x-content-type-options'], 'nosniff');
  });

  it('cache versioned assets for a year and others briefly; unknown assets are 404', async () => {
    const app = await pages(fakeDeps([]));
    const home = await app.inject('/');
    const href = /href="(\/assets\/app\.css\?v=[0-9a-f]+)"/.exec(home.body)?.[1];
    assert.ok(href);
    const versioned = await app.inject(href);
    assert.equal(versioned.headers['cache-control'], 'public, max-age=31536000, immutable');
    const plain = await app.inject('/assets/app.css');
    assert.equal(plain.headers['cache-control'], 'public, max-age=300');
    assert.equal((await app.inject('/assets/nope.js')).statusCode, 404);
    assert.equal((await app.inject({ method: 'HEAD', url: '/keys' })).statusCode, 200);
  });
});
