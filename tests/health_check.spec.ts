import { HealthChecks } from '@adonisjs/core/health'
import { test } from '@japa/runner'
import { Redis } from 'ioredis'
import { defineConfig, LockManager, LockStoreCheck, stores } from '../index.ts'
import { MemoryStore, RedisStore } from '../src/stores/main.ts'
import { setupApp } from './helpers/app.ts'
import { pollUntil } from './helpers/poll.ts'
import { RedisServer, redisBinariesAvailable } from './helpers/redis_servers.ts'

test.group('LockStoreCheck', () => {
  test('reports a live store as healthy, with its latency', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })
    const locks = await app.container.make('lock.manager')
    const report = await new HealthChecks().register([new LockStoreCheck(locks)]).run()

    assert.isTrue(report.isHealthy)
    const [check] = report.checks
    assert.equal(check.status, 'ok')
    assert.equal(check.meta!.stores[0].name, 'memory')
    assert.isNumber(check.meta!.stores[0].latency)
    assert.isFalse(await locks.use('memory').store.exists('lock:health-check'))
  })

  test('reports an unknown store name as an error', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })
    const locks = await app.container.make('lock.manager')
    const result = await new LockStoreCheck(locks, 'redis').run()
    assert.equal(result.status, 'error')
    assert.match(result.message, /"redis": Unknown lock store/)
  })

  test('reports a Redis store that stops answering, then recovers', async ({ assert, cleanup }) => {
    const server = await RedisServer.start()
    cleanup(() => server.destroy())
    const connection = new Redis({
      port: server.port,
      host: '127.0.0.1',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    })
    connection.on('error', () => {})
    cleanup(() => connection.disconnect())
    await connection.connect()

    const locks = new LockManager({
      default: 'redis',
      stores: {
        redis: { driver: { factory: () => new RedisStore({ connection }) } },
        memory: { driver: { factory: () => new MemoryStore() } },
      },
    })
    cleanup(() => locks.close())
    const check = new LockStoreCheck(locks)

    const healthy = await check.run()
    assert.equal(healthy.status, 'ok')
    assert.deepEqual(
      healthy.meta!.stores.map((store: any) => store.name),
      ['redis', 'memory']
    )

    await server.stop()
    const down = await check.run()
    assert.equal(down.status, 'error')
    assert.match(down.message, /"redis": The lock store failed/)
    const redis = down.meta!.stores.find((store: any) => store.name === 'redis')
    assert.isNull(redis.latency)
    assert.isString(redis.error)
    const memory = down.meta!.stores.find((store: any) => store.name === 'memory')
    assert.isNumber(memory.latency)

    /**
     * The client may still be reconnecting on its own, and then refuses
     * commands (no offline queue): the store is back once it is ready
     */
    await server.start()
    await connection.connect().catch(() => {})
    assert.isTrue(await pollUntil(() => connection.status === 'ready', 10_000, 20))
    const back = await check.run()
    assert.equal(back.status, 'ok')
  })
    .skip(!redisBinariesAvailable(), 'redis-server is not installed')
    .timeout(30_000)
})
