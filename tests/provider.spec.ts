import { Writable } from 'node:stream'
import { test } from '@japa/runner'
import { defineConfig, errors, LockManager, stores } from '../index.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import type { LockEvents } from '../src/types.ts'
import { setupApp } from './helpers/app.ts'

/**
 * A store that counts what the provider does with it
 */
class CountingStore extends MemoryStore {
  static created = 0
  static closed = 0

  constructor() {
    super()
    CountingStore.created++
  }

  async close() {
    CountingStore.closed++
  }
}

function catchError(run: () => unknown): any {
  try {
    run()
  } catch (error) {
    return error
  }
}

const countingStore = () => ({ driver: { factory: () => new CountingStore() } })

test.group('Provider', (group) => {
  group.each.setup(() => {
    CountingStore.created = 0
    CountingStore.closed = 0
  })

  test('binds the lock manager singleton from config/lock.ts', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })

    const manager = await app.container.make('lock.manager')
    assert.instanceOf(manager, LockManager)
    assert.strictEqual(await app.container.make('lock.manager'), manager)

    const lock = manager.createLock('invoice.1')
    assert.isTrue(await lock.acquireImmediately())
    assert.isFalse(await manager.createLock('invoice.1').acquireImmediately())
    await lock.release()
  })

  test('services/main exposes the same singleton', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })
    const { default: locks } = await import('../services/main.ts')
    assert.strictEqual(locks, await app.container.make('lock.manager'))
  })

  test('builds only the stores that are used and closes them on shutdown', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: {
        lock: defineConfig({
          default: 'memory',
          stores: { memory: stores.memory(), counting: countingStore(), unused: countingStore() },
        }),
      },
    })
    const manager = await app.container.make('lock.manager')
    assert.equal(CountingStore.created, 0)

    await manager.use('counting').createLock('a').acquire()
    assert.strictEqual(manager.use('counting'), manager.use('counting'))
    assert.equal(CountingStore.created, 1)

    await app.terminate()
    assert.equal(CountingStore.closed, 1)
  })

  test('a store whose backend is not registered fails only when used', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: {
        lock: defineConfig({
          default: 'memory',
          stores: { database: stores.database(), cache: stores.redis(), memory: stores.memory() },
        }),
      },
    })
    const manager = await app.container.make('lock.manager')
    assert.isTrue(await manager.use('memory').createLock('a').acquireImmediately())

    const error = catchError(() => manager.use('database'))
    assert.instanceOf(error, errors.E_INVALID_LOCK_CONFIG)
    assert.equal(
      error.message,
      'The "database" lock store could not be configured: Cannot resolve binding "lucid.db" from the container: is @adonisjs/lucid installed and its provider registered in adonisrc.ts?'
    )
    assert.match((error.cause as Error).message, /Cannot resolve binding "lucid.db"/)
    assert.throws(
      () => manager.use('cache'),
      /^The "cache" lock store could not be configured: .* is @adonisjs\/redis installed/
    )
  })

  test('applies the config defaults: ttl, prefix and retry', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: {
        lock: defineConfig({
          default: 'memory',
          ttl: '2s',
          prefix: 'shop',
          retry: { attempts: 2, delay: '10ms' },
          stores: { memory: stores.memory() },
        }),
      },
    })
    const manager = await app.container.make('lock.manager')
    const lock = manager.createLock('cart.9')
    assert.equal(lock.getTtl(), 2000)
    assert.equal(lock.storeKey, 'shop:cart.9')

    await lock.acquire()
    const startedAt = Date.now()
    assert.isFalse(await manager.createLock('cart.9').acquire())
    assert.isBelow(Date.now() - startedAt, 1500, 'two attempts 10 ms apart, not the 2 s ttl')
  })

  test('emits typed events on the app emitter', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })
    const emitter = await app.container.make('emitter')
    const seen: Array<[string, unknown]> = []
    for (const name of [
      'lock:acquired',
      'lock:released',
      'lock:failed',
      'lock:extended',
    ] as const) {
      emitter.on(name, (data: LockEvents[typeof name]) => {
        seen.push([name, data])
      })
    }
    const manager = await app.container.make('lock.manager')
    const lock = manager.createLock('mail.1', '5s')
    await lock.acquire()
    await manager.createLock('mail.1').acquireImmediately()
    await lock.extend()
    await lock.release()

    assert.deepEqual(
      seen.map(([name]) => name),
      ['lock:acquired', 'lock:failed', 'lock:extended', 'lock:released']
    )
    assert.containSubset(seen[0][1], { key: 'mail.1', store: 'memory', owner: lock.getOwner() })
    assert.containSubset(seen[1][1], { key: 'mail.1', attempts: 1, reason: 'attempts' })
  })

  test('writes debug logs through the app logger, tagged pkg adonis-lock', async ({ assert }) => {
    const lines: any[] = []
    const destination = new Writable({
      write(chunk, _, done) {
        lines.push(JSON.parse(chunk.toString()))
        done()
      },
    })
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: {
        logger: {
          default: 'app',
          loggers: { app: { enabled: true, level: 'debug', destination } },
        },
        lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }),
      },
    })
    const manager = await app.container.make('lock.manager')
    const lock = manager.createLock('audit.1')
    await lock.acquire()
    await lock.release()

    const ours = lines.filter((line) => line.pkg === 'adonis-lock')
    assert.deepEqual(
      ours.map((line) => line.msg),
      ['lock:acquired', 'lock:released']
    )
    assert.equal(ours[0].key, 'audit.1')
  })

  test('an unknown store is E_UNKNOWN_LOCK_STORE naming the configured ones', async ({
    assert,
  }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })
    const manager = (await app.container.make('lock.manager')) as LockManager
    assert.throws(
      () => manager.use('redis'),
      'Unknown lock store "redis". Configured stores: "memory"'
    )
    assert.throws(() => manager.use('redis'), errors.E_UNKNOWN_LOCK_STORE as any)
    assert.throws(
      () =>
        manager.restoreLock({
          key: 'a',
          owner: 'b',
          ttl: null,
          expirationTime: null,
          store: 'nope',
          fencingToken: null,
        }),
      errors.E_UNKNOWN_LOCK_STORE as any
    )
  })

  test('a missing config/lock.ts is a clear error', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
    })
    await assert.rejects(() => app.container.make('lock.manager'), /Missing "config\/lock.ts"/)
  })
})

test.group('LockManager without the provider', () => {
  test('a config provider entry is a clear E_INVALID_LOCK_CONFIG', ({ assert }) => {
    const manager = new LockManager(
      defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) as any
    )
    assert.throws(
      () => manager.createLock('a'),
      /^The "memory" lock store is a config provider .* Outside an app, pass \{ driver: \{ factory: \(\) => store \} \}/
    )
    assert.throws(() => manager.createLock('a'), errors.E_INVALID_LOCK_CONFIG as any)
  })

  test('an entry without driver.factory is a clear E_INVALID_LOCK_CONFIG', ({ assert }) => {
    const manager = new LockManager({ default: 'broken', stores: { broken: {} } } as any)
    assert.throws(
      () => manager.use('broken'),
      'Invalid lock store "broken": expected { driver: { factory: (name) => store } }'
    )
  })
})
