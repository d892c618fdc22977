import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { fromValidator, list, megabytes, port, readableFile, seconds } from './flags.ts';

const refuses = (parse: (value: string) => unknown, values: string[], accepts: RegExp) => {
  for (const value of values) {
    assert.throws(
      () => parse(value),
      (error: unknown) => error instanceof InvalidArgumentError && accepts.test(error.message),
      JSON.stringify(value),
    );
  }
};

it('a port is a whole number from 0 to 65535', () => {
  assert.equal(port('0'), 0);
  assert.equal(port('5001'), 5001);
  assert.equal(port(' 65535 '), 65535);
  refuses(port, ['', ' ', 'abc', '-1', '65536', '80.5', '0x50', '1e3', '5001abc'], /port from 0/);
});

it('sizes in MB take decimals above 0, or 0 and more where 0 means off', () => {
  assert.equal(megabytes()('64'), 64);
  assert.equal(megabytes()('0.5'), 0.5);
  assert.equal(megabytes({ orZero: true })('0'), 0);
  refuses(megabytes(), ['0', '0.0', 'abc', '-1', '', 'NaN', 'Infinity', '1e400'], /MB above 0/);
  refuses(megabytes({ orZero: true }), ['-1', 'abc', ''], /MB, 0 or more/);
});

it('seconds take decimals above 0 up to a bound, or 0 and more where 0 means off', () => {
  assert.equal(seconds()('1.5'), 1.5);
  assert.equal(seconds({ max: 3600 })('3600'), 3600);
  assert.equal(seconds({ orZero: true })('0'), 0);
  refuses(seconds(), ['0', '-5', 'soon'], /seconds above 0\.$/);
  refuses(seconds({ max: 3600 }), ['3601', '0'], /seconds above 0 and at most 3600/);
  refuses(seconds({ orZero: true }), ['-1', ''], /seconds, 0 or more/);
});

it('a list is split at commas, blanks dropped', () => {
  assert.deepEqual(list(' http://a:1, http://b:2 ,,'), ['http://a:1', 'http://b:2']);
  assert.deepEqual(list(''), []);
});

it("a domain validator's refusal becomes commander's, with the validator's message", () => {
  const parse = fromValidator((value) => {
    if (value !== 'ok') throw new TypeError('Say ok.');
    return 1;
  });
  assert.equal(parse('ok'), 1);
  refuses(parse, ['no'], /^Say ok\.$/);
});

it('a readable file is a path to a regular file this process may read', () => {
  const here = new URL(import.meta.url).pathname;
  assert.equal(readableFile(here), here);
  refuses(
    readableFile,
    ['/nonexistent/cert.pem', ''],
    /^Expected a readable file; there is no such file\.$/,
  );
  refuses(readableFile, [tmpdir()], /^Expected a readable file; it is not a regular file\.$/);
});
