import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyInPath, keyProblem, MAX_KEY_LENGTH } from './keys.ts';

test('keys: any well-formed Unicode without whitespace, controls or a slash', () => {
  for (const key of ['a', 'cat.png', 'ключ', '猫-1', '😀'.repeat(MAX_KEY_LENGTH), "it's"]) {
    assert.equal(keyProblem(key), undefined, key);
  }
  for (const key of ['', 'a b', 'a\tb', 'a\u0000b', 'a\u200bb', 'a/b', 'x'.repeat(129)]) {
    assert.ok(keyProblem(key), JSON.stringify(key));
  }
});

test('keys: a lone surrogate half is refused (the database would fold it into U+FFFD)', () => {
  for (const key of ['\ud800', 'a\udc00', 'x\ud83d']) {
    assert.match(keyProblem(key) ?? '', /valid Unicode/);
  }
  assert.equal(keyProblem('\ud83d\ude00'), undefined, 'a whole pair is one character');
});

test('the key in a path is the one the router would route, or none', () => {
  assert.equal(keyInPath('/images/cat.png', '/images/'), 'cat.png');
  assert.equal(keyInPath('/images/k%C3%A9p%23one', '/images/'), 'kép#one');
  for (const target of [
    '/api/key/cat',
    '/images/',
    '/images/a/b',
    '/images/a?x=1',
    '/images/a#b',
    '/images/%E0%A4%A',
  ]) {
    assert.equal(keyInPath(target, '/images/'), undefined, target);
  }
});
