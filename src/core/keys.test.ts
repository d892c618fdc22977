import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyProblem, MAX_KEY_LENGTH } from './keys.ts';

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
