import { test } from '@japa/runner'
import { defineConfig, errors, stores } from '../index.ts'

test.group('defineConfig', () => {
  test('returns a valid config as it is', ({ assert }) => {
    const config = { default: 'memory' as const, ttl: '5s', stores: { memory: stores.memory() } }
    assert.strictEqual(defineConfig(config), config)
  })

  test('rejects {$self}')
    .with([
      { name: 'a missing config', config: undefined, message: /expected an object/ },
      { name: 'missing stores', config: { default: 'memory' }, message: /Missing "stores"/ },
      {
        name: 'empty stores',
        config: { default: 'memory', stores: {} },
        message: /"stores" property .* is empty/,
      },
      {
        name: 'missing default',
        config: { stores: { memory: stores.memory() } },
        message: /Missing "default"/,
      },
      {
        name: 'a default that is not configured',
        config: { default: 'redis', stores: { memory: stores.memory() } },
        message: /"default" store "redis" is not among the configured "stores" \(memory\)/,
      },
      {
        name: 'a store that is not a store',
        config: { default: 'memory', stores: { memory: { driver: {} } } },
        message: /Invalid "stores.memory"/,
      },
      {
        name: 'a bad ttl',
        config: { default: 'memory', ttl: 'forever', stores: { memory: stores.memory() } },
        message: /Invalid ttl "forever"/,
      },
      {
        name: 'a negative ttl',
        config: { default: 'memory', ttl: -5, stores: { memory: stores.memory() } },
        message: /Invalid ttl -5/,
      },
      {
        name: 'a bad retry delay',
        config: {
          default: 'memory',
          retry: { delay: 'often' },
          stores: { memory: stores.memory() },
        },
        message: /Invalid retry.delay "often"/,
      },
      {
        name: 'bad retry attempts',
        config: { default: 'memory', retry: { attempts: -1 }, stores: { memory: stores.memory() } },
        message: /Invalid "retry.attempts" -1/,
      },
      {
        name: 'a bad prefix',
        config: { default: 'memory', prefix: 42, stores: { memory: stores.memory() } },
        message: /Invalid "prefix" 42/,
      },
    ])
    .run(({ assert }, { config, message }) => {
      assert.throws(() => defineConfig(config as any), errors.E_INVALID_LOCK_CONFIG as any)
      assert.throws(() => defineConfig(config as any), message)
    })

  test('accepts custom stores written as a plain factory', ({ assert }) => {
    const custom = { driver: { factory: () => ({}) as any } }
    assert.doesNotThrow(() => defineConfig({ default: 'custom', stores: { custom } }))
  })
})
