import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PixpoolError } from '../../core/errors.ts';
import { parseSizes, parseVariant, type VariantSpec, variantId } from './spec.ts';

const parse = (query: string, accept?: string) => parseVariant(query, accept);
const refused = (query: string, message: RegExp) =>
  assert.throws(
    () => parse(query),
    (error: unknown) =>
      error instanceof PixpoolError && error.status === 400 && message.test(error.message),
    query,
  );

describe('variant parameters', () => {
  it('no query, or only the cache-buster v, is the original', () => {
    assert.equal(parse(''), undefined);
    assert.equal(parse('v=17'), undefined);
    assert.equal(parse('v='), undefined);
    assert.equal(parse('w=256&v=17')?.width, 256, 'v goes with any variant');
    refused(`v=${'x'.repeat(65)}`, /v \(a cache-buster\) may be at most 64 characters/);
    refused('v=1&v=2', /v is given twice/);
  });

  it('rounds sizes up to the allowlist and qualities up to a multiple of 5', () => {
    const spec = parse('w=100&h=201&fit=contain&format=webp&q=71') as VariantSpec;
    assert.deepEqual(spec, {
      width: 128,
      height: 256,
      fit: 'contain',
      format: 'webp',
      quality: 75,
      auto: undefined,
    });
    assert.equal(parseVariant('w=1', undefined, [10, 20])?.width, 10);
    assert.equal(parseVariant('w=20', undefined, [10, 20])?.width, 20);
  });

  it('one size keeps proportions: one canonical fit, so one cache entry', () => {
    const a = parse('w=256') as VariantSpec;
    const b = parse('w=250&format=jpeg') as VariantSpec;
    assert.equal(a.fit, 'inside');
    assert.equal(variantId(a), variantId({ ...b, format: undefined }));
    assert.equal((parse('w=256&h=256') as VariantSpec).fit, 'cover', 'cover by default');
  });

  it('equal outputs share an id, different outputs never do', () => {
    const ids = [
      'w=256',
      'h=256',
      'w=256&h=256',
      'w=256&h=256&fit=contain',
      'w=256&format=webp',
      'w=256&format=webp&q=50',
      'format=png',
    ].map((q) => variantId(parse(q) as VariantSpec));
    assert.equal(new Set(ids).size, ids.length, ids.join(' '));
    assert.equal(
      variantId(parse('w=255') as VariantSpec),
      variantId(parse('w=256') as VariantSpec),
    );
  });

  it('format=auto keeps which modern formats the Accept header takes', () => {
    const auto = (accept?: string) => parse('w=64&format=auto', accept)?.auto;
    assert.deepEqual(auto('image/avif,image/webp,*/*'), { avif: true, webp: true });
    assert.deepEqual(auto('image/webp,*/*;q=0.8'), { avif: false, webp: true });
    assert.deepEqual(
      auto('image/avif;q=0, image/webp'),
      { avif: false, webp: true },
      'q=0 refuses',
    );
    assert.deepEqual(auto(undefined), { avif: false, webp: false });
    assert.notEqual(
      variantId(parse('w=64&format=auto', 'image/webp') as VariantSpec),
      variantId(parse('w=64&format=auto', 'image/avif') as VariantSpec),
    );
  });

  it('refuses what it does not know or cannot be, naming it', () => {
    refused('width=100', /Unknown image parameter "width": use w, h, fit, format and q \(and v/);
    refused('w=100&w=200', /w is given twice/);
    refused('w=0', /w \(width\) must be 1 to 2560 pixels; got 0/);
    refused('w=100000', /w \(width\) must be 1 to 2560 pixels; got 100000/);
    refused('h=abc', /h \(height\) must be a whole number of pixels, 1 to 2560; got "abc"/);
    refused('w=-5', /whole number/);
    refused('w=1.5', /whole number/);
    refused('w=', /whole number/);
    refused('w=100&fit=stretch', /Unknown fit "stretch": use cover, contain or inside/);
    refused('fit=cover', /fit needs a width \(w\) and a height \(h\)/);
    refused('format=tiff', /Unknown format "tiff": use jpeg, png, webp, avif or auto/);
    refused('q=0', /q \(quality\) must be a whole number from 1 to 100; got "0"/);
    refused('q=101', /from 1 to 100/);
    refused('q=high', /from 1 to 100/);
    refused('format=png&q=50', /not to png/);
  });

  it('reads a configured size list, sorted and unique, and refuses a bad one', () => {
    assert.deepEqual(parseSizes('640, 64,128,64'), [64, 128, 640]);
    for (const bad of ['', '64,,128', '0', '64,abc', '9000', '1e3']) {
      assert.throws(() => parseSizes(bad), /variant sizes must be whole numbers/, bad);
    }
  });
});
