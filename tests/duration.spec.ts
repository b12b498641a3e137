import { test } from '@japa/runner'
import { parseDuration } from '../src/duration.ts'
import { errors } from '../index.ts'

test.group('Durations', () => {
  test('parses {$self}')
    .with([
      { input: 250, ms: 250 },
      { input: '250ms', ms: 250 },
      { input: '10s', ms: 10_000 },
      { input: '1.5s', ms: 1500 },
      { input: '2m', ms: 120_000 },
      { input: '1h', ms: 3_600_000 },
      { input: ' 3 s ', ms: 3000 },
      { input: '0', ms: 0 },
      { input: null, ms: null },
    ])
    .run(({ assert }, { input, ms }) => {
      assert.strictEqual(parseDuration(input), ms)
    })

  test('rejects {$self} with E_INVALID_DURATION naming the value')
    .with([
      -1,
      Number.NaN,
      Infinity,
      '',
      'soon',
      '10 years',
      '-5s',
      '1e3',
      {},
      [],
      true,
      undefined,
      2 ** 40,
    ])
    .run(({ assert }, input) => {
      assert.throws(() => parseDuration(input), errors.E_INVALID_DURATION as any)
      try {
        parseDuration(input)
      } catch (error) {
        assert.equal((error as any).code, 'E_INVALID_DURATION')
        assert.include((error as Error).message, 'Invalid duration')
      }
    })
})
