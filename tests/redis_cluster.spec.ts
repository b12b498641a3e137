/**
 * The Redis store on a real cluster: three masters without replicas,
 * started by these tests from the `redis-server` binary on spare ports and
 * stopped after the last group of this file.
 */
import { test } from '@japa/runner'
import type { TestContext } from '@japa/runner/core'
import { defineConfig as defineRedisConfig } from '@adonisjs/redis'
import { Cluster } from 'ioredis'
import { defineConfig, stores } from '../index.ts'
import { E_LOCK_STORAGE_ERROR } from '../src/errors.ts'
import { LockFactory } from '../src/lock_factory.ts'
import { RedisStore } from '../src/stores/redis/redis_store.ts'
import { sleep } from '../src/wait.ts'
import { setupLockApp } from './helpers/app.ts'
import { redisSuiteStores } from './helpers/redis_stores.ts'
import { RedisCluster, redisBinariesAvailable } from './helpers/redis_servers.ts'
import { uniqueKey } from './helpers/services.ts'
import { registerStoreSuite } from './store_suite.ts'
import type { ContendResult, WorkerTask } from './workers/redis_lock_worker.ts'
import { contend, type WorkerProcess } from './workers/worker_process.ts'

const WORKER = './redis_lock_worker.ts'

const binaries = redisBinariesAvailable()
let starting: Promise<RedisCluster> | undefined

/**
 * Started by the first test that needs it
 */
function startCluster(): Promise<RedisCluster> {
  starting ??= RedisCluster.start(3)
  return starting
}

registerStoreSuite('Redis store on a 3-master cluster', {
  skip: !binaries && 'redis-server is not installed',
  ...redisSuiteStores(async () => {
    const { nodes } = await startCluster()
    return new Cluster(nodes)
  }),
})

async function setup(cleanup: TestContext['cleanup']) {
  const { nodes } = await startCluster()
  const connection = new Cluster(nodes)
  const store = new RedisStore({ connection })
  const prefix = uniqueKey('adonis-lock-test')
  cleanup(async () => {
    await store.close()
    await connection.quit()
  })
  return { connection, store, prefix, locks: new LockFactory(store, { prefix }) }
}

/**
 * Port of the master holding the lock `storeKey`
 */
async function masterPort(connection: Cluster, storeKey: string): Promise<number> {
  const slot = await connection.cluster('KEYSLOT', `{${storeKey}}`)
  const slots = await connection.cluster('SLOTS')
  const [, , [, port]] = slots.find(([from, to]) => slot >= from && slot <= to)!
  return port
}

test.group('Redis store on a 3-master cluster | slots, pub/sub, processes', (group) => {
  const workers: WorkerProcess[] = []
  group.tap((t) => {
    t.skip(!binaries, 'redis-server is not installed')
    t.timeout(90_000)
  })
  group.each.teardown(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop()))
  })
  group.teardown(async () => {
    const cluster = await starting?.catch(() => undefined)
    await cluster?.destroy()
  })

  test('a lock and its fencing counter share a slot, whatever braces the key holds', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks, prefix } = await setup(cleanup)
    const names = ['order.1', '}', '}}', '}a', 'a}', 'a}b', '{a}', '{a', 'x}:fencing']
    const plain = new LockFactory(locks.store, { prefix: '' })
    for (const name of names) {
      for (const lock of [
        locks.createLock(name, '10s'),
        plain.createLock(`${name}${prefix}`, '10s'),
      ]) {
        assert.isTrue(await lock.acquireImmediately(), `acquires ${lock.storeKey}`)
        await lock.release()
      }
    }
    /**
     * Every key the store wrote is in the slot of its lock
     */
    const written: string[] = []
    for (const node of connection.nodes('master')) {
      written.push(...(await node.keys(`*${prefix}*`)))
    }
    assert.lengthOf(written, names.length * 2)
    for (const key of written) {
      const lockKey = key.slice(0, -':fencing'.length)
      assert.equal(
        await connection.cluster('KEYSLOT', key),
        await connection.cluster('KEYSLOT', lockKey),
        key
      )
    }
  })

  test('inspect reads holder and token in one script, whatever braces the key holds', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks, store } = await setup(cleanup)
    const plain = new LockFactory(new RedisStore({ connection, fencing: false }), {
      prefix: locks.createLock('x').storeKey,
    })
    for (const name of ['order.1', '}', '{a}', 'a}b']) {
      for (const lock of [locks.createLock(name, '10s'), plain.createLock(name, '10s')]) {
        assert.isTrue(await lock.acquire(), lock.storeKey)
        const inspection = await store.inspect(lock.storeKey)
        assert.equal(inspection?.owner, lock.getOwner(), lock.storeKey)
        assert.isAbove(inspection!.expiresIn!, 5000, lock.storeKey)
        if (lock.fencingToken === null) assert.isUndefined(inspection?.fencingToken)
        else assert.equal(inspection?.fencingToken, lock.fencingToken, lock.storeKey)
        await lock.release()
        assert.isNull(await store.inspect(lock.storeKey), lock.storeKey)
      }
    }
  })

  test('locks on every master work, and their waiters are woken whatever node they listen on', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks } = await setup(cleanup)
    const masters = connection.nodes('master')
    assert.lengthOf(masters, 3)

    const byPort = new Map<number, string>()
    for (let index = 0; byPort.size < 3; index++) {
      const name = `spread.${index}`
      const port = await masterPort(connection, locks.createLock(name).storeKey)
      if (!byPort.has(port)) byPort.set(port, name)
    }

    for (const name of byPort.values()) {
      const holder = locks.createLock(name, '20s')
      assert.isTrue(await holder.acquire())
      const waiting = locks
        .createLock(name, '20s')
        .acquire({ retry: { delay: '30s', timeout: '15s' } })
      await sleep(300)
      const releasedAt = Date.now()
      await holder.release()
      assert.isTrue(await waiting, name)
      assert.isBelow(Date.now() - releasedAt, 10_000, name)
    }
  })

  test('2 processes x 8 workers never overlap and get strictly increasing tokens', async ({
    assert,
    cleanup,
  }) => {
    const { connection, prefix } = await setup(cleanup)
    const { nodes } = await startCluster()
    const results = await contend<ContendResult, WorkerTask>(
      WORKER,
      2,
      {
        redis: { cluster: nodes },
        prefix,
        key: 'contended',
        ttl: '10s',
        workers: 8,
        rounds: 3,
        holdMs: 2,
        counterKey: `${prefix}:inside`,
        tokensKey: `${prefix}:tokens`,
        retry: { timeout: '60s' },
      },
      workers
    )

    assert.deepEqual(
      results.map(({ served, notServed, overlaps }) => ({ served, notServed, overlaps })),
      Array(2).fill({ served: 24, notServed: 0, overlaps: 0 })
    )
    assert.equal(await connection.get(`${prefix}:inside`), '0')
    const tokens = await connection.lrange(`${prefix}:tokens`, 0, -1)
    assert.lengthOf(tokens, 48)
    for (let index = 1; index < tokens.length; index++) {
      assert.isAbove(Number(tokens[index]), Number(tokens[index - 1]), `token ${index}`)
    }
  })

  test('stores.redis works on an @adonisjs/redis cluster connection', async ({ assert }) => {
    const { nodes } = await startCluster()
    const app = await setupLockApp(
      {
        redis: defineRedisConfig({
          connection: 'cluster',
          connections: { cluster: { clusters: nodes } },
        }),
        lock: defineConfig({
          default: 'redis',
          prefix: uniqueKey('adonis-lock-test'),
          stores: { redis: stores.redis({ connectionName: 'cluster' }) },
        }),
      },
      'redis'
    )
    const manager = await app.container.make('lock.manager')
    const lock = manager.createLock('invoice.1', '10s')
    assert.isTrue(await lock.acquire())
    assert.isNumber(lock.fencingToken)
    const waiter = manager.createLock('invoice.1')
    const waiting = waiter.acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(300)
    await lock.release()
    assert.isTrue(await waiting)
    await waiter.release()
    assert.isFalse(await waiter.isLocked())
  })

  /**
   * Last of the file: it stops the cluster's nodes
   */
  test('with the settings the README gives, calls fail fast while nodes are down', async ({
    assert,
    cleanup,
  }) => {
    const cluster = await startCluster()
    const connection = new Cluster(cluster.nodes, {
      enableOfflineQueue: false,
      redisOptions: { commandTimeout: 500 },
    })
    connection.on('error', () => {})
    const store = new RedisStore({ connection })
    cleanup(async () => {
      await store.close()
      connection.disconnect()
    })
    while (connection.status !== 'ready') await sleep(50)
    const locks = new LockFactory(store, { prefix: uniqueKey('adonis-lock-test') })
    const [down, ...up] = cluster.servers
    const keysOn = async (port: number) => {
      const names: string[] = []
      for (let index = 0; names.length < 2; index++) {
        const name = `k.${index}`
        if ((await masterPort(connection, locks.createLock(name).storeKey)) === port)
          names.push(name)
      }
      return names
    }
    const onDown = await keysOn(down.port)
    const onUp = await keysOn(up[0].port)

    await down.stop()
    for (const name of onDown) {
      const startedAt = Date.now()
      const failure = await locks
        .createLock(name)
        .acquire({ retry: { timeout: '1s' } })
        .catch((error) => error)
      assert.instanceOf(failure, E_LOCK_STORAGE_ERROR)
      assert.isBelow(Date.now() - startedAt, 8000)
    }
    for (const name of onUp) assert.isTrue(await locks.createLock(name).acquireImmediately())

    await Promise.all(up.map((server) => server.stop()))
    const failure = await locks
      .createLock(onUp[0])
      .acquire({ retry: { timeout: '1s' } })
      .catch((error) => error)
    assert.instanceOf(failure, E_LOCK_STORAGE_ERROR)
  })
})
