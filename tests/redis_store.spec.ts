import { assertFreeLockNotBehindSlotWaiters } from './helpers/slot_line.ts'
import { readFile } from 'node:fs/promises'
import type { Assert } from '@japa/assert'
import { test } from '@japa/runner'
import type { TestContext } from '@japa/runner/core'
import { defineConfig as defineRedisConfig } from '@adonisjs/redis'
import { Redis } from 'ioredis'
import { LISTING_FILE, redisScriptsListing } from '../bin/redis_scripts_listing.ts'
import { defineConfig, stores } from '../index.ts'
import type { RedisStoreConfig } from '../src/define_config.ts'
import { E_INVALID_LOCK_CONFIG, E_LOCK_NOT_OWNED, E_LOCK_STORAGE_ERROR } from '../src/errors.ts'
import { LockFactory } from '../src/lock_factory.ts'
import { RedisStore } from '../src/stores/redis/redis_store.ts'
import * as scripts from '../src/stores/redis/scripts/main.ts'
import { WAITED_MARK } from '../src/stores/redis/scripts/main.ts'
import type { SerializedLock } from '../src/types.ts'
import { watchCalls } from '../src/testing/helpers.ts'
import { settleWithin, sleep } from '../src/wait.ts'
import { setupLockApp } from './helpers/app.ts'
import { runStandalone } from './helpers/exits.ts'
import { redisSuiteStores } from './helpers/redis_stores.ts'
import { RedisServer, redisBinariesAvailable, sparePort } from './helpers/redis_servers.ts'
import { SERVICES, serviceAvailable, uniqueKey } from './helpers/services.ts'
import { registerStoreSuite } from './store_suite.ts'
import type { ContendResult, WorkerTask } from './workers/redis_lock_worker.ts'
import { contend, WorkerProcess } from './workers/worker_process.ts'

const WORKER = './redis_lock_worker.ts'

const available = await serviceAvailable('redis')
const { port } = SERVICES.redis

/**
 * Deletes the keys a test made on the shared server
 */
async function deleteKeys(connection: Redis, pattern: string) {
  for await (const keys of connection.scanStream({ match: pattern, count: 500 })) {
    if ((keys as string[]).length) await connection.del(...(keys as string[]))
  }
}

async function subscribers(connection: Redis, channel: string): Promise<number> {
  const [, count] = await connection.pubsub('NUMSUB', channel)
  return Number(count)
}

/**
 * The number of subscribers of the channel once it is `count`, or after 2 s
 */
async function untilSubscribers(connection: Redis, channel: string, count: number) {
  for (let attempt = 0; attempt < 100; attempt++) {
    if ((await subscribers(connection, channel)) === count) break
    await sleep(20)
  }
  return subscribers(connection, channel)
}

for (const fencing of [true, false]) {
  registerStoreSuite(fencing ? 'Redis store' : 'Redis store with fencing: false', {
    skip: !available,
    fencing,
    ...redisSuiteStores(
      () => new Redis({ port }),
      { fencing },
      (connection) => deleteKeys(connection, `{suite:${process.pid}:*`)
    ),
  })
}

/**
 * A connection, a store and a unique key prefix for one test; all of it,
 * and the keys under the prefix, go away when the test ends
 */
function setup(
  cleanup: TestContext['cleanup'],
  options: { channel?: string; fencing?: boolean } = {}
) {
  const connection = new Redis({ port })
  const store = new RedisStore({ connection, ...options })
  const prefix = uniqueKey('adonis-lock-test')
  cleanup(async () => {
    await store.close()
    await deleteKeys(connection, `*${prefix}*`)
    await connection.quit()
  })
  return { connection, store, prefix, locks: new LockFactory(store, { prefix }) }
}

/**
 * The lines several scripts carry outside the shared functions of
 * scripts/functions.ts are listed here once, and must read the same
 * wherever they appear
 */
const SHARED_LUA = {
  'the mark of a lock waited for': ["local WAITED = '\\0waited'"],
  'the owner check': [
    "local held = redis.call('GET', KEYS[1])",
    'local mark',
    "if held == ARGV[1] then mark = '' elseif held == ARGV[1] .. WAITED then mark = WAITED end",
  ],
  'the server clock in ms and the expired holders dropped': [
    "local time = redis.call('TIME')",
    'local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)',
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)",
  ],
}

test.group('Redis store | scripts', () => {
  const all = Object.entries(scripts).filter(
    (entry): entry is [string, scripts.RedisScript] => typeof entry[1] === 'object'
  )

  test('every script spells the mark of a lock waited for as the store does', ({ assert }) => {
    assert.equal(WAITED_MARK, '\u0000waited')
    for (const [name, { lua }] of all) {
      if (lua.includes('WAITED'))
        assert.include(lua, SHARED_LUA['the mark of a lock waited for'][0], name)
    }
  })

  test('a part shared by several scripts reads the same in each of them', ({ assert }) => {
    for (const [part, lines] of Object.entries(SHARED_LUA)) {
      const users = all.filter(([, { lua }]) => lua.includes(lines.at(-1)!.slice(0, 24)))
      assert.isAbove(users.length, 0, part)
      for (const [name, { lua }] of users) {
        assert.include(lua, lines.join('\n'), `${name}: ${part}`)
      }
    }
  })

  test('docs/redis_scripts.md lists every script as the server receives it', async ({ assert }) => {
    const listed = await readFile(LISTING_FILE, 'utf8')
    assert.equal(listed, redisScriptsListing(), 'stale: run npm run docs:redis-scripts')
  })

  test('scripts are loaded as written, with the sha the server computes', async ({ assert }) => {
    const { createHash } = await import('node:crypto')
    for (const [name, { lua, sha }] of all) {
      assert.equal(sha, createHash('sha1').update(lua).digest('hex'), name)
      assert.notInclude(lua, '${', name)
    }
  })
})

test.group('Redis store | keys and fencing', (group) => {
  group.tap((t) => t.skip(!available, 'Redis is not reachable on 127.0.0.1:6379'))

  test('a script that waited on a lock exits once it closed its own connection', async ({
    assert,
  }) => {
    const run = await runStandalone(['redis', uniqueKey('exits')])
    assert.isTrue(run.done, run.output)
    assert.isTrue(run.exited, 'the script was still running 10 s after closing its connection')
    assert.equal(run.code, 0, run.output)
  }).timeout(90_000)

  test('a lock lives under its hash-tagged key, next to its fencing counter', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks, prefix } = setup(cleanup)
    const lock = locks.createLock('order.1', '10s')
    assert.isTrue(await lock.acquire())

    assert.equal(await connection.get(`{${prefix}:order.1}`), lock.getOwner())
    assert.equal(Number(await connection.get(`{${prefix}:order.1}:fencing`)), lock.fencingToken)
    const pttl = await connection.pttl(`{${prefix}:order.1}`)
    assert.isAbove(pttl, 9000)
    assert.isAtMost(pttl, 10_000)
  })

  test('only the fencing counter outlives a lock, and it expires too', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks, prefix } = setup(cleanup)
    for (const [name, ttl] of [
      ['short', 500],
      ['long', 45_000],
      ['forever', null],
    ] as const) {
      const lock = locks.createLock(name, ttl)
      await lock.acquire()
      await lock.release()
    }
    const keys = await connection.keys(`*${prefix}*`)
    keys.sort()
    assert.deepEqual(keys, [
      `{${prefix}:forever}:fencing`,
      `{${prefix}:long}:fencing`,
      `{${prefix}:short}:fencing`,
    ])
    const lifetime = async (name: string) => connection.pttl(`{${prefix}:${name}}:fencing`)
    assert.isAbove(await lifetime('short'), 55_000)
    assert.isAtMost(await lifetime('short'), 60_000)
    assert.isAbove(await lifetime('long'), 85_000)
    assert.isAtMost(await lifetime('long'), 90_000)
    assert.isAbove(await lifetime('forever'), 55_000)
    assert.isAtMost(await lifetime('forever'), 60_000)
  })

  test('tokens keep increasing after the fencing counter expired', async ({ assert, cleanup }) => {
    const { connection, locks, prefix } = setup(cleanup)
    const tokens: number[] = []
    for (let round = 0; round < 5; round++) {
      const lock = locks.createLock('invoice', '10s')
      await lock.acquire()
      tokens.push(lock.fencingToken!)
      await lock.release()
      /**
       * What expiry of the counter leaves behind
       */
      if (round % 2 === 0) await connection.del(`{${prefix}:invoice}:fencing`)
    }
    for (let index = 1; index < tokens.length; index++) {
      assert.isAbove(tokens[index], tokens[index - 1])
    }
    assert.isTrue(tokens.every(Number.isSafeInteger))
  })

  test('a counter set back (a failover to a stale replica) never repeats a token', async ({
    assert,
    cleanup,
  }) => {
    const { connection, store, prefix } = setup(cleanup)
    const counter = (key: string) => `{${prefix}:${key}}:fencing`
    /**
     * What a replica promoted before the last increments reached it holds:
     * a counter from a minute ago
     */
    const setBack = async (key: string, token: number) => {
      await connection.set(counter(key), token - 60_000_000, 'PX', 60_000)
    }

    const first = await store.save(`${prefix}:lock`, 'a', 1000)
    assert.isTrue(first.acquired)
    await setBack('lock', first.fencingToken!)
    await store.delete(`${prefix}:lock`, 'a')
    const second = await store.save(`${prefix}:lock`, 'b', 1000)
    assert.isAbove(second.fencingToken!, first.fencingToken!)

    const slot = await store.saveSlot(`${prefix}:pool`, 'a', 2, 1000)
    await setBack('pool', slot.fencingToken!)
    const nextSlot = await store.saveSlot(`${prefix}:pool`, 'b', 2, 1000)
    assert.isAbove(nextSlot.fencingToken!, slot.fencingToken!)

    const locks = new LockFactory(store, { prefix })
    const holder = locks.createLock('handed', '10s')
    assert.isTrue(await holder.acquire())
    const before = holder.fencingToken!
    const waiter = locks.createLock('handed', '10s')
    const waiting = waiter.acquire({ retry: { delay: 5000, timeout: 10_000 } })
    await sleep(100)
    await setBack('handed', before)
    await holder.release()
    assert.isTrue(await waiting)
    assert.isAbove(waiter.fencingToken!, before)
    await waiter.release()
  })

  test('tokens keep increasing when many acquisitions fall in the same microsecond', async ({
    assert,
    cleanup,
  }) => {
    const { connection, store, prefix } = setup(cleanup)
    /**
     * A counter ahead of the clock, as a burst of acquisitions leaves it
     */
    const ahead = (Date.now() + 60_000) * 1000
    await connection.set(`{${prefix}:burst}:fencing`, ahead, 'PX', 60_000)
    const first = await store.save(`${prefix}:burst`, 'a', 1000)
    await store.delete(`${prefix}:burst`, 'a')
    const second = await store.save(`${prefix}:burst`, 'b', 1000)
    assert.equal(first.fencingToken, ahead + 1)
    assert.equal(second.fencingToken, ahead + 2)
  })

  test('a client with stringNumbers: true reads the same answers', async ({ assert, cleanup }) => {
    const connection = new Redis({ port, stringNumbers: true })
    const store = new RedisStore({ connection })
    const prefix = uniqueKey('adonis-lock-test')
    cleanup(async () => {
      await store.close()
      await deleteKeys(connection, `*${prefix}*`)
      await connection.quit()
    })
    const locks = new LockFactory(store, { prefix })
    const lock = locks.createLock('numbers', '10s')
    assert.isTrue(await lock.acquire())
    assert.isNumber(lock.fencingToken)
    const other = locks.createLock('numbers', '10s')
    assert.isFalse(await other.acquireImmediately())
    assert.isAbove(other.getHolderRemainingTime()!, 9000)
    assert.isTrue(await lock.isLocked())
    await lock.extend('20s')
    const inspection = await store.inspect(lock.storeKey)
    assert.isAbove(inspection!.expiresIn!, 19_000)
    assert.equal(inspection!.fencingToken, lock.fencingToken)
    await lock.release()
    assert.isFalse(await lock.isLocked())

    const slot = locks.createSemaphore('numbers-pool', 2, '10s')
    assert.isTrue(await slot.acquire())
    await slot.extend()
    await slot.release()
  })

  test('a connection with a keyPrefix keeps the keys under it and still wakes waiters', async ({
    assert,
    cleanup,
  }) => {
    const { connection, prefix } = setup(cleanup)
    const prefixed = new Redis({ port, keyPrefix: `${prefix}:app:` })
    const store = new RedisStore({ connection: prefixed })
    cleanup(async () => {
      await store.close()
      await prefixed.quit()
    })
    const locks = new LockFactory(store, { prefix: 'lock' })
    const holder = locks.createLock('order.1', '20s')
    await holder.acquire()
    assert.equal(await connection.get(`${prefix}:app:{lock:order.1}`), holder.getOwner())
    assert.equal(await connection.exists(`${prefix}:app:{lock:order.1}:fencing`), 1)

    const waiting = locks.createLock('order.1').acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(300)
    const releasedAt = Date.now()
    await holder.release()
    assert.isTrue(await waiting)
    assert.isBelow(Date.now() - releasedAt, 10_000)
  })

  test('a refused acquire tells how long the holder still has', async ({ assert, cleanup }) => {
    const { store, prefix } = setup(cleanup)
    await store.save(`${prefix}:held`, 'holder', 5000)
    await assertRefusalsTellTimeLeft(assert, store, prefix)
  })

  test('keys with braces get their own lock and share a slot with their counter', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks, prefix } = setup(cleanup)
    const names = ['}', '}}', '}a', 'a}', 'a}b', '{a}', 'a', '{a', 'a}:fencing', '_}']
    const plain = new LockFactory(locks.store, { prefix: '' })
    const held = []
    for (const name of names) {
      for (const factory of [locks, plain]) {
        const key = factory === plain ? `${name}${prefix}` : name
        const lock = factory.createLock(key, '10s')
        assert.isTrue(await lock.acquireImmediately(), `acquires ${key}`)
        assert.isFalse(await factory.createLock(key).acquireImmediately(), `${key} is taken`)
        held.push(lock)
      }
    }
    for (const lock of held) {
      assert.isTrue(await lock.isOwned())
      await lock.release()
    }
    const left = await connection.keys(`*${prefix}*`)
    assert.lengthOf(left, names.length * 2)
    assert.isTrue(left.every((key) => key.endsWith(':fencing')))
  })

  test('acquire and release are one command each', async ({ assert, cleanup }) => {
    const { connection, locks } = setup(cleanup)
    const sent: string[] = []
    const sendCommand = connection.sendCommand.bind(connection)
    connection.sendCommand = (command, stream) => {
      sent.push(command.name)
      return sendCommand(command, stream)
    }
    const lock = locks.createLock('order.9', '10s')
    /**
     * The first run may load the scripts (NOSCRIPT, then EVAL)
     */
    await lock.acquire()
    await lock.release()
    sent.length = 0

    assert.isTrue(await lock.acquire())
    assert.deepEqual(sent, ['evalsha'])
    assert.isFalse(await locks.createLock('order.9').acquireImmediately())
    assert.deepEqual(sent, ['evalsha', 'evalsha'])
    await lock.extend()
    await lock.release()
    assert.deepEqual(sent, ['evalsha', 'evalsha', 'evalsha', 'evalsha'])
  })
})

/**
 * A store refuses `held` (held for 5 s) with the holder's time left, and a
 * key held without expiry with `retryAfter: null`
 */
async function assertRefusalsTellTimeLeft(assert: Assert, store: RedisStore, prefix: string) {
  const refused = await store.save(`${prefix}:held`, 'waiter', 5000)
  assert.isFalse(refused.acquired)
  assert.isAbove(refused.retryAfter!, 4000)
  assert.isAtMost(refused.retryAfter!, 5000)

  await store.save(`${prefix}:forever`, 'holder', null)
  assert.deepEqual(await store.save(`${prefix}:forever`, 'waiter', 5000), {
    acquired: false,
    retryAfter: null,
  })
}

/**
 * Subscribes a connection of its own to the release channel. `received()`
 * resolves to the messages so far, those published before the call
 * included: they come in order, before the answer to its PING.
 */
async function listenToReleases(cleanup: TestContext['cleanup'], channel: string) {
  const listener = new Redis({ port })
  cleanup(async () => {
    await listener.quit()
  })
  const messages: string[] = []
  listener.on('message', (_channel: string, message: string) => messages.push(message))
  await listener.subscribe(channel)
  return async () => {
    await listener.call('PING')
    return [...messages]
  }
}

/**
 * Records the names of the commands the connection sends, once it is
 * connected
 */
async function recordCommands(connection: Redis): Promise<string[]> {
  await connection.ping()
  const sent: string[] = []
  const sendCommand = connection.sendCommand.bind(connection)
  connection.sendCommand = (command, stream) => {
    sent.push(command.name)
    return sendCommand(command, stream)
  }
  return sent
}

test.group('Redis store | fencing: false', (group) => {
  group.tap((t) => t.skip(!available, 'Redis is not reachable on 127.0.0.1:6379'))

  test('acquire is a bare SET NX PX: no counter, no token', async ({ assert, cleanup }) => {
    const { connection, locks, prefix } = setup(cleanup, { fencing: false })
    const sent = await recordCommands(connection)
    const lock = locks.createLock('order.1', '10s')

    assert.isTrue(await lock.acquire())
    assert.deepEqual(sent, ['set'])
    assert.isNull(lock.fencingToken)
    assert.equal(await connection.get(`{${prefix}:order.1}`), lock.getOwner())
    const pttl = await connection.pttl(`{${prefix}:order.1}`)
    assert.isAbove(pttl, 9000)
    assert.isAtMost(pttl, 10_000)

    const [ran, token] = await locks
      .createLock('order.2', '10s')
      .run(({ fencingToken }) => fencingToken)
    assert.isTrue(ran)
    assert.isNull(token)

    await lock.release()
    assert.deepEqual(await connection.keys(`*${prefix}*`), [])
  })

  test('a lock without ttl is a SET NX without expiry', async ({ assert, cleanup }) => {
    const { connection, locks, prefix } = setup(cleanup, { fencing: false })
    const lock = locks.createLock('forever', null)
    assert.isTrue(await lock.acquire())
    assert.equal(await connection.pttl(`{${prefix}:forever}`), -1)
    assert.isFalse(await locks.createLock('forever').acquireImmediately())
    await lock.release()
    assert.isTrue(await locks.createLock('forever').acquireImmediately())
  })

  test('a refused acquire reads the time the holder has left, and marks the lock waited for', async ({
    assert,
    cleanup,
  }) => {
    const { connection, store, prefix } = setup(cleanup, { fencing: false })
    assert.deepEqual(await store.save(`${prefix}:held`, 'holder', 5000), {
      acquired: true,
      fencingToken: null,
    })
    /**
     * Loads the script, should the server not have it
     */
    await store.save(`${prefix}:held`, 'first waiter', 5000)
    const sent = await recordCommands(connection)
    await assertRefusalsTellTimeLeft(assert, store, prefix)
    assert.deepEqual(sent, ['set', 'evalsha', 'set', 'set', 'evalsha'])
    assert.equal(await connection.get(`{${prefix}:held}`), `holder${WAITED_MARK}`)
    assert.equal(await store.owner(`${prefix}:held`), 'holder')
    const left = await connection.pttl(`{${prefix}:held}`)
    assert.isAbove(left, 4000)
    assert.isAtMost(left, 5000)
    assert.equal(await connection.get(`{${prefix}:forever}`), `holder${WAITED_MARK}`)
    assert.equal(await connection.pttl(`{${prefix}:forever}`), -1)
  })

  test('a lock freed between the refused SET and the PTTL means retry now', async ({
    assert,
    cleanup,
  }) => {
    const { connection, store, prefix } = setup(cleanup, { fencing: false })
    await store.save(`${prefix}:gone`, 'holder', 5000)
    /**
     * The holder releases right after the SET was refused
     */
    const set = connection.set.bind(connection) as (...args: unknown[]) => Promise<unknown>
    connection.set = (async (...args: unknown[]) => {
      const reply = await set(...args)
      await store.delete(`${prefix}:gone`, 'holder')
      return reply
    }) as typeof connection.set
    assert.deepEqual(await store.save(`${prefix}:gone`, 'waiter', 5000), {
      acquired: false,
      retryAfter: 0,
    })
  })

  test('an expired lock is taken over, and its old owner cannot release it', async ({
    assert,
    cleanup,
  }) => {
    const { locks } = setup(cleanup, { fencing: false })
    const stale = locks.createLock('short', 100)
    assert.isTrue(await stale.acquire())
    await sleep(250)
    const fresh = locks.createLock('short', '10s')
    assert.isTrue(await fresh.acquireImmediately())
    await assert.rejects(() => stale.release(), E_LOCK_NOT_OWNED as any)
    assert.isTrue(await fresh.isOwned())
  })

  test('semaphore slots keep their fencing tokens', async ({ assert, cleanup }) => {
    const { locks } = setup(cleanup, { fencing: false })
    const first = locks.createSemaphore('pool', 2, '10s')
    const second = locks.createSemaphore('pool', 2, '10s')
    assert.isTrue(await first.acquire())
    assert.isTrue(await second.acquire())
    assert.isAbove(second.fencingToken!, first.fencingToken!)
  })

  test('the option must be a boolean', ({ assert }) => {
    const connection = new Redis({ port, lazyConnect: true })
    for (const fencing of ['false', 0, 1, null, {}]) {
      const create = () => new RedisStore({ connection, fencing: fencing as any })
      assert.throws(create, E_INVALID_LOCK_CONFIG as any)
      assert.throws(create, /Invalid "fencing" .*: expected a boolean/)
    }
    assert.doesNotThrow(() => new RedisStore({ connection, fencing: true }))
    assert.doesNotThrow(() => new RedisStore({ connection, fencing: undefined }))
    connection.disconnect()
  })
})

test.group('Redis store | inspect', (group) => {
  group.tap((t) => t.skip(!available, 'Redis is not reachable on 127.0.0.1:6379'))

  test('owner, remaining ms and fencing token in one command', async ({ assert, cleanup }) => {
    const { connection, store, locks } = setup(cleanup)
    const lock = locks.createLock('held', '10s')
    await lock.acquire()
    /**
     * The first call may load the script (NOSCRIPT, then EVAL)
     */
    await store.inspect(lock.storeKey)
    const sent = await recordCommands(connection)

    const inspection = await store.inspect(lock.storeKey)
    assert.deepEqual(sent, ['evalsha'])
    assert.equal(inspection?.owner, lock.getOwner())
    assert.equal(inspection?.fencingToken, lock.fencingToken)
    assert.isAbove(inspection!.expiresIn!, 9000)
    assert.isAtMost(inspection!.expiresIn!, 10_000)

    await lock.release()
    assert.isNull(await store.inspect(lock.storeKey))
    assert.isNull(await store.inspect(locks.createLock('never-taken').storeKey))
  })

  test('a lock without ttl never expires; a lost counter is an unknown token', async ({
    assert,
    cleanup,
  }) => {
    const { connection, store, locks, prefix } = setup(cleanup)
    const lock = locks.createLock('forever', null)
    await lock.acquire()
    assert.deepEqual(await store.inspect(lock.storeKey), {
      owner: lock.getOwner(),
      expiresIn: null,
      fencingToken: lock.fencingToken,
    })
    /**
     * What a lock held past the lifetime of its counter sees
     */
    await connection.del(`{${prefix}:forever}:fencing`)
    assert.deepEqual(await store.inspect(lock.storeKey), {
      owner: lock.getOwner(),
      expiresIn: null,
      fencingToken: undefined,
    })
  })

  test('with fencing: false the token is null, even next to an old counter', async ({
    assert,
    cleanup,
  }) => {
    const { connection, store, locks, prefix } = setup(cleanup, { fencing: false })
    await connection.set(`{${prefix}:plain}:fencing`, '42', 'PX', 10_000)
    const lock = locks.createLock('plain', '10s')
    await lock.acquire()
    const inspection = await store.inspect(lock.storeKey)
    assert.equal(inspection?.owner, lock.getOwner())
    assert.isNull(inspection?.fencingToken)
    assert.isAbove(inspection!.expiresIn!, 9000)
  })
})

test.group('Redis store | waking waiters', (group) => {
  group.tap((t) => {
    t.skip(!available, 'Redis is not reachable on 127.0.0.1:6379')
    t.timeout(20_000)
  })

  test('an owner asking again right after its release queues behind the waiter', async ({
    assert,
    cleanup,
  }) => {
    const { locks, store } = setup(cleanup)
    const holder = locks.createLock('barging', '20s')
    await holder.acquire()
    assert.isFalse(store.hasWaiters(holder.storeKey))

    const order: string[] = []
    const waiter = locks.createLock('barging', '20s')
    const waiting = waiter.acquire({ retry: { delay: '30s', timeout: '15s' } }).then(async () => {
      order.push('waiter')
      await waiter.release()
    })
    for (let tick = 0; tick < 400 && !store.hasWaiters(holder.storeKey); tick++) await sleep(5)
    assert.isTrue(store.hasWaiters(holder.storeKey))

    await holder.release()
    const again = locks.createLock('barging', '20s')
    assert.isTrue(await again.acquire({ retry: { delay: '30s', timeout: '15s' } }))
    order.push('holder again')
    await waiting

    assert.deepEqual(order, ['waiter', 'holder again'])
    await again.release()
    assert.isFalse(store.hasWaiters(holder.storeKey))
  })

  for (const fencing of [true, false]) {
    test(`only a release after a refused try publishes (fencing: ${fencing})`, async ({
      assert,
      cleanup,
    }) => {
      const channel = uniqueKey('adonis-lock-test-channel')
      const { locks, prefix } = setup(cleanup, { channel, fencing })
      const received = await listenToReleases(cleanup, channel)
      const lock = locks.createLock('quiet', '10s')
      const refusedTry = () => locks.createLock('quiet').acquireImmediately()

      for (let round = 0; round < 5; round++) {
        await lock.acquire()
        await lock.release()
      }
      await lock.acquire()
      await lock.forceRelease()

      await lock.acquire()
      assert.isFalse(await refusedTry())
      await lock.release()
      await lock.acquire()
      await lock.release()

      await lock.acquire()
      assert.isFalse(await refusedTry())
      await lock.forceRelease()

      assert.deepEqual(await received(), [`${prefix}:quiet`, `${prefix}:quiet`])
    })
  }

  test('the mark of a refused try lives in the lock, and expires with it', async ({
    assert,
    cleanup,
  }) => {
    const { connection, locks, prefix } = setup(cleanup)
    const holder = locks.createLock('short', 300)
    await holder.acquire()
    assert.isFalse(await locks.createLock('short').acquireImmediately())
    assert.equal(await connection.get(`{${prefix}:short}`), `${holder.getOwner()}${WAITED_MARK}`)
    assert.isAtMost(await connection.pttl(`{${prefix}:short}`), 300)
    await sleep(400)
    assert.deepEqual(await connection.keys(`*${prefix}*`), [`{${prefix}:short}:fencing`])
  })

  test('a lock marked as waited for is still its owner’s, and a hand-over passes the mark on', async ({
    assert,
    cleanup,
  }) => {
    const channel = uniqueKey('adonis-lock-test-channel')
    const { connection, store, locks, prefix } = setup(cleanup, { channel })
    const received = await listenToReleases(cleanup, channel)
    const redisKey = `{${prefix}:marked}`

    const holder = locks.createLock('marked', '10s')
    await holder.acquire()
    assert.isFalse(await locks.createLock('marked').acquireImmediately())
    assert.equal(await connection.get(redisKey), `${holder.getOwner()}${WAITED_MARK}`)
    assert.isTrue(await holder.isOwned())
    const inspection = await store.inspect(holder.storeKey)
    assert.equal(inspection?.owner, holder.getOwner())
    await holder.extend('20s')
    assert.isAbove(await connection.pttl(redisKey), 10_000)
    const impostor = locks.restoreLock({ ...holder.serialize(), owner: 'someone else' })
    await assert.rejects(() => impostor.release(), E_LOCK_NOT_OWNED as any)
    await assert.rejects(() => impostor.extend(), E_LOCK_NOT_OWNED as any)

    const waiter = locks.createLock('marked', '10s')
    const waiting = waiter.acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(100)
    await holder.release()
    assert.isTrue(await waiting)
    assert.equal(await connection.get(redisKey), `${waiter.getOwner()}${WAITED_MARK}`)
    assert.isTrue(await waiter.isOwned())
    assert.isFalse(await holder.isOwned())

    /**
     * The waiters of other processes, refused during the first holding,
     * are woken by the release of the second
     */
    assert.deepEqual(await received(), [])
    await waiter.release()
    assert.deepEqual(await received(), [`${prefix}:marked`])
    assert.equal(await connection.exists(redisKey), 0)
  })

  test('a waiter of another store on another connection is woken', async ({ assert, cleanup }) => {
    const first = setup(cleanup)
    const second = setup(cleanup)
    const prefix = first.prefix
    const holder = first.locks.createLock('shared', '20s')
    await holder.acquire()
    const waiter = new LockFactory(second.store, { prefix }).createLock('shared', '20s')
    const waiting = waiter.acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(300)
    const releasedAt = Date.now()
    await holder.release()
    assert.isTrue(await waiting)
    assert.isBelow(Date.now() - releasedAt, 10_000)
    await waiter.release()
  })

  test('a release just before the waiter listens is not slept through', async ({
    assert,
    cleanup,
  }) => {
    const channel = uniqueKey('adonis-lock-test-channel')
    const { connection, store, prefix } = setup(cleanup, { channel })
    /**
     * Opens the subscriber and waits until it listens
     */
    await store.waitForRelease(`${prefix}:warm-up`, 1)
    await untilSubscribers(connection, channel, 1)

    await connection.publish(channel, `${prefix}:late`)
    await sleep(20)
    const startedAt = Date.now()
    await store.waitForRelease(`${prefix}:late`, 10_000)
    assert.isBelow(Date.now() - startedAt, 5000)

    /**
     * That release was claimed: the next wait waits
     */
    const again = Date.now()
    await store.waitForRelease(`${prefix}:late`, 300)
    assert.isAtLeast(Date.now() - again, 250)
  })

  test('an aborted wait rejects with the signal reason', async ({ assert, cleanup }) => {
    const { store, prefix } = setup(cleanup)
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('gone')), 100)
    await assert.rejects(
      () => store.waitForRelease(`${prefix}:abort`, 10_000, controller.signal),
      'gone'
    )
    await assert.rejects(
      () => store.waitForRelease(`${prefix}:abort`, 10_000, controller.signal),
      'gone'
    )
  })

  test('stores on one connection share one subscriber, closed with the last of them', async ({
    assert,
    cleanup,
  }) => {
    const channel = uniqueKey('adonis-lock-test-channel')
    const { connection, store, prefix } = setup(cleanup, { channel })
    const other = new RedisStore({ connection, channel })

    await store.waitForRelease(`${prefix}:a`, 1)
    await other.waitForRelease(`${prefix}:b`, 1)
    assert.equal(await untilSubscribers(connection, channel, 1), 1)

    await other.close()
    await sleep(100)
    assert.equal(await subscribers(connection, channel), 1)

    /**
     * A wait pending when the last store closes ends at once
     */
    const startedAt = Date.now()
    const pending = store.waitForRelease(`${prefix}:c`, 10_000)
    await store.close()
    await pending
    assert.isBelow(Date.now() - startedAt, 5000)
    assert.equal(await untilSubscribers(connection, channel, 0), 0)
    assert.equal(connection.status, 'ready')
    assert.equal(await connection.ping(), 'PONG')

    /**
     * A closed store only sleeps
     */
    await store.waitForRelease(`${prefix}:d`, 50)
    assert.equal(await subscribers(connection, channel), 0)
  })

  test('a store closing after its connection ended leaves the subscriber of a newer store alone', async ({
    assert,
    cleanup,
  }) => {
    const channel = uniqueKey('adonis-lock-test-channel')
    const { connection, prefix } = setup(cleanup, { channel })
    const duplicate = connection.duplicate.bind(connection)
    let opened = 0
    connection.duplicate = (...args) => {
      opened++
      return duplicate(...args)
    }
    const first = new RedisStore({ connection, channel })
    await first.waitForRelease(`${prefix}:a`, 1)
    /**
     * The app ended the connection the subscriber was duplicated from, then
     * a store joined again
     */
    connection.emit('end')
    const second = new RedisStore({ connection, channel })
    await second.waitForRelease(`${prefix}:b`, 1)
    assert.equal(opened, 2)

    await first.close()
    const third = new RedisStore({ connection, channel })
    await third.waitForRelease(`${prefix}:c`, 1)
    assert.equal(opened, 2, 'a third subscriber connection was opened')
    assert.equal(await untilSubscribers(connection, channel, 1), 1)
    await third.close()
    await second.close()
    assert.equal(await untilSubscribers(connection, channel, 0), 0)
  })

  test('a free lock is taken at once while semaphore waiters of the same key wait', async ({
    assert,
    cleanup,
  }) => {
    const locks = setup(cleanup).locks
    await assertFreeLockNotBehindSlotWaiters(assert, locks)
  }).timeout(30_000)

  test("after an impostor's refused release, a newcomer joins the line while the real holder holds", async ({
    assert,
    cleanup,
  }) => {
    const { locks, store } = setup(cleanup)
    const first = locks.createLock('held', '20s')
    assert.isTrue(await first.acquire())
    /**
     * The holder gets the lock by a hand-over: it is held in this process
     */
    const holder = locks.createLock('held', '20s')
    const handed = holder.acquire({ retry: { delay: '30s', timeout: '15s' } })
    for (let tick = 0; tick < 400 && !store.hasWaiters(holder.storeKey); tick++) await sleep(5)
    await first.release()
    assert.isTrue(await handed)

    /**
     * A waiter in line when an impostor's release is refused; it gives up
     */
    const waiter = locks
      .createLock('held', '20s')
      .acquire({ retry: { delay: '30s', timeout: 500 } })
    await sleep(100)
    const impostor = locks.restoreLock({ ...holder.serialize(), owner: 'impostor' })
    await assert.rejects(() => impostor.release())
    assert.isFalse(await waiter)
    /**
     * Refused again with nobody in line: the store releases as usual
     */
    await assert.rejects(() => impostor.release())

    const { calls } = watchCalls(store)
    const newcomer = locks.createLock('held', '20s')
    const waiting = newcomer.acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(200)
    assert.equal(calls.saves, 0, 'the newcomer spent a refused try while the holder held the lock')
    await holder.release()
    assert.isTrue(await waiting)
    assert.equal(calls.saves, 0)
    await newcomer.release()
  })

  test('a given subscriber connection is used, and left open', async ({ assert, cleanup }) => {
    const channel = uniqueKey('adonis-lock-test-channel')
    const subscriber = new Redis({ port })
    cleanup(async () => {
      await subscriber.quit()
    })
    const { connection, locks, store, prefix } = setup(cleanup, { channel })
    const given = new RedisStore({ connection, subscriber, channel })
    const holder = locks.createLock('given', '20s')
    await holder.acquire()

    const waiting = new LockFactory(given, { prefix })
      .createLock('given', '20s')
      .acquire({ retry: { delay: '30s', timeout: '15s' } })
    await untilSubscribers(connection, channel, 1)
    await holder.release()
    assert.isTrue(await waiting)

    await given.close()
    await store.close()
    assert.equal(await untilSubscribers(connection, channel, 0), 0)
    assert.equal(subscriber.status, 'ready')
  })
})

test.group('Redis store | several processes', (group) => {
  const workers: WorkerProcess[] = []
  group.tap((t) => {
    t.skip(!available, 'Redis is not reachable on 127.0.0.1:6379')
    t.timeout(90_000)
  })
  group.each.teardown(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop()))
  })

  test('3 processes x 8 workers never overlap and get strictly increasing tokens', async ({
    assert,
    cleanup,
  }) => {
    const { connection, prefix } = setup(cleanup)
    const results = await contend<ContendResult, WorkerTask>(
      WORKER,
      3,
      {
        redis: { port },
        prefix,
        key: 'contended',
        ttl: '10s',
        workers: 8,
        rounds: 4,
        holdMs: 2,
        counterKey: `${prefix}:inside`,
        tokensKey: `${prefix}:tokens`,
        retry: { delay: 50, timeout: '60s' },
      },
      workers
    )

    assert.deepEqual(
      results.map(({ served, notServed, overlaps }) => ({ served, notServed, overlaps })),
      Array(3).fill({ served: 32, notServed: 0, overlaps: 0 })
    )
    assert.equal(await connection.get(`${prefix}:inside`), '0')
    const tokens = await connection.lrange(`${prefix}:tokens`, 0, -1)
    assert.lengthOf(tokens, 96)
    for (let index = 1; index < tokens.length; index++) {
      assert.isAbove(Number(tokens[index]), Number(tokens[index - 1]), `token ${index}`)
    }
  })

  test('2 processes x 16 workers on one key are all served with the default config', async ({
    assert,
    cleanup,
  }) => {
    const { connection, prefix } = setup(cleanup)
    /**
     * The defaults (30 s ttl, 250 ms fallback poll), with a timeout so a
     * starved worker shows up as not served rather than as a hung test
     */
    const results = await contend<ContendResult, WorkerTask>(
      WORKER,
      2,
      {
        redis: { port },
        prefix,
        key: 'all-served',
        workers: 16,
        rounds: 1,
        holdMs: 50,
        counterKey: `${prefix}:inside`,
        tokensKey: `${prefix}:tokens`,
        retry: { timeout: '30s' },
      },
      workers
    )

    const served = results.reduce((sum, result) => sum + result.served, 0)
    const overlaps = results.reduce((sum, result) => sum + result.overlaps, 0)
    assert.equal(served, 32)
    assert.equal(overlaps, 0)
    assert.lengthOf(await connection.lrange(`${prefix}:tokens`, 0, -1), 32)
    console.log(
      `      2 x 16 workers served in ${Math.max(...results.map((result) => result.elapsed))} ms`
    )
  })

  test('a lock handed over with serialize() is released by another process', async ({
    assert,
    cleanup,
  }) => {
    const { locks, prefix } = setup(cleanup)
    const lock = locks.createLock('handoff', '20s')
    await lock.acquire()

    const worker = await WorkerProcess.start<WorkerTask>(
      WORKER,
      {
        task: 'release',
        redis: { port },
        prefix,
        key: 'handoff',
        serialized: JSON.parse(JSON.stringify(lock.serialize())),
      },
      workers
    )
    const waiting = locks.createLock('handoff').acquire({ retry: { delay: '30s', timeout: '20s' } })
    await sleep(200)
    const releasedAt = Date.now()
    worker.go()
    const result = await worker.result<{ owned: boolean; fencingToken: number }>()

    assert.deepEqual(result, { owned: true, fencingToken: lock.fencingToken! })
    assert.isTrue(await waiting)
    assert.isBelow(Date.now() - releasedAt, 15_000)
    await assert.rejects(() => lock.release(), E_LOCK_NOT_OWNED as any)
  })

  test('a lock taken in another process is restored and released here', async ({
    assert,
    cleanup,
  }) => {
    const { locks, prefix } = setup(cleanup)
    const worker = await WorkerProcess.start<WorkerTask>(
      WORKER,
      {
        task: 'hold',
        redis: { port },
        prefix,
        key: 'taken-there',
        ttl: '20s',
      },
      workers
    )
    worker.go()
    const serialized = await worker.result<SerializedLock>()

    assert.isFalse(await locks.createLock('taken-there').acquireImmediately())
    const restored = locks.restoreLock(serialized)
    assert.isTrue(await restored.isOwned())
    assert.isNumber(restored.fencingToken)
    await restored.extend('5s')
    await restored.release()
    assert.isFalse(await restored.isLocked())
  })
})

test.group('Redis store | a private server going down', (group) => {
  const binaries = redisBinariesAvailable()
  let server: RedisServer | undefined
  group.tap((t) => {
    t.skip(!binaries, 'redis-server is not installed')
    t.timeout(60_000)
  })
  group.each.teardown(async () => {
    await server?.destroy()
    server = undefined
  })

  /**
   * A store on the private server; with `subscriberOptions`, given a
   * subscriber connection of its own
   */
  function privateStore(
    cleanup: TestContext['cleanup'],
    options: object,
    subscriberOptions?: object
  ) {
    const connect = (clientOptions: object) => {
      const client = new Redis({ port: server!.port, retryStrategy: () => 100, ...clientOptions })
      client.on('error', () => {})
      return client
    }
    const connection = connect(options)
    const subscriber = subscriberOptions && connect(subscriberOptions)
    const store = new RedisStore({ connection, subscriber })
    cleanup(async () => {
      await store.close()
      connection.disconnect()
      subscriber?.disconnect()
    })
    return { connection, subscriber, store, locks: new LockFactory(store, { prefix: 'private' }) }
  }

  async function untilReady(connection: Redis) {
    for (let attempt = 0; attempt < 200 && connection.status !== 'ready'; attempt++) {
      await sleep(50)
    }
  }

  for (const [label, options] of [
    ['enableOfflineQueue: false', { enableOfflineQueue: false }],
    ['commandTimeout: 500', { commandTimeout: 500 }],
    ['maxRetriesPerRequest: 1', { maxRetriesPerRequest: 1 }],
  ] as const) {
    test(`calls fail with E_LOCK_STORAGE_ERROR while it is down and recover (${label})`, async ({
      assert,
      cleanup,
    }) => {
      server = await RedisServer.start()
      const { connection, locks } = privateStore(cleanup, options)
      await untilReady(connection)
      const lock = locks.createLock('restart', '10s')
      assert.isTrue(await lock.acquire())
      /**
       * Opens the subscriber, to see it come back too
       */
      await locks.store.waitForRelease!('private:warm-up', 1)

      await server.stop()
      const startedAt = Date.now()
      const failure = await locks
        .createLock('other', '10s')
        .acquire({ retry: { timeout: '2s' } })
        .catch((error) => error)
      assert.instanceOf(failure, E_LOCK_STORAGE_ERROR)
      assert.instanceOf(failure.cause, Error)
      assert.isBelow(Date.now() - startedAt, 8000)
      await assert.rejects(() => lock.release(), E_LOCK_STORAGE_ERROR as any)
      await assert.rejects(() => lock.isLocked(), E_LOCK_STORAGE_ERROR as any)

      await server.start()
      await untilReady(connection)
      /**
       * The server came back empty: the scripts are loaded again, and a
       * waiter is woken through the subscriber that reconnected
       */
      const holder = locks.createLock('restart', '20s')
      assert.isTrue(await holder.acquire())
      const waiting = locks
        .createLock('restart', '20s')
        .acquire({ retry: { delay: '30s', timeout: '20s' } })
      await sleep(500)
      const releasedAt = Date.now()
      await holder.release()
      assert.isTrue(await waiting)
      assert.isBelow(Date.now() - releasedAt, 15_000)
    })
  }

  for (const fencing of [true, false]) {
    test(`an acquire that timed out releases what it may have taken, in the background (fencing: ${fencing})`, async ({
      assert,
      cleanup,
    }) => {
      server = await RedisServer.start()
      const connection = new Redis({ port: server.port, commandTimeout: 200 })
      connection.on('error', () => {})
      const admin = new Redis({ port: server.port })
      const store = new RedisStore({ connection, fencing })
      cleanup(async () => {
        await store.close()
        connection.disconnect()
        admin.disconnect()
      })
      await untilReady(connection)
      /**
       * The scripts are loaded: a timed-out EVALSHA answered NOSCRIPT would
       * have taken nothing
       */
      assert.deepInclude(await store.save('warm-up', 'owner', 1000), { acquired: true })
      assert.deepInclude(await store.saveSlot('warm-up', 'owner', 2, 1000), { acquired: true })

      /**
       * The server runs the acquire only after the client gave up on it;
       * the answer to a PING sent then comes after everything sent before
       */
      await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE')
      await assert.rejects(() => store.save('timed-out', 'owner', 30_000), /timed out/)
      await admin.call('CLIENT', 'UNPAUSE')
      await connection.ping()
      assert.equal(await admin.exists('{timed-out}'), 0, 'the lock taken by the timed-out acquire')

      await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE')
      await assert.rejects(() => store.saveSlot('timed-out-pool', 'owner', 2, 30_000), /timed out/)
      await admin.call('CLIENT', 'UNPAUSE')
      await connection.ping()
      assert.equal(await admin.zcard('{timed-out-pool}:slots'), 0, 'the slot taken')
    })
  }

  test('scripts flushed on the server are loaded again, even by many calls at once', async ({
    assert,
    cleanup,
  }) => {
    server = await RedisServer.start()
    const { connection, locks } = privateStore(cleanup, {})
    for (let round = 0; round < 3; round++) {
      await connection.script('FLUSH')
      const held = await Promise.all(
        Array.from({ length: 20 }, async (_, index) => {
          const lock = locks.createLock(`flushed.${index}`, '10s')
          assert.isTrue(await lock.acquire())
          return lock
        })
      )
      await connection.script('FLUSH')
      await Promise.all(held.map((lock) => lock.extend()))
      await connection.script('FLUSH')
      await Promise.all(held.map((lock) => lock.release()))
    }
    assert.deepEqual(await connection.keys('{private:flushed.*}'), [])
  })

  test('close() returns at once while a given subscriber reconnects, waking its waiters', async ({
    assert,
    cleanup,
  }) => {
    server = await RedisServer.start()
    const { connection, subscriber, store, locks } = privateStore(
      cleanup,
      {},
      { maxRetriesPerRequest: null }
    )
    await untilReady(connection)
    assert.isTrue(await locks.createLock('closing', '10s').acquire())
    const waiting = locks
      .createLock('closing', '10s')
      .acquire({ retry: { delay: '30s', timeout: '30s' } })
      .catch((error) => error)
    await sleep(200)

    await server.stop()
    while (subscriber!.status === 'ready') await sleep(20)
    const closed = store.close().then(() => 'closed')
    assert.equal(await settleWithin(closed, 2000), 'closed')
    /**
     * The woken waiter tries again and finds no server
     */
    assert.instanceOf(await settleWithin(waiting, 5000), E_LOCK_STORAGE_ERROR)
  })

  test('a read-only replica fails with E_LOCK_STORAGE_ERROR', async ({ assert, cleanup }) => {
    /**
     * A replica of a master that is not there is still read-only
     */
    const nowhere = await sparePort()
    server = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(nowhere)] })
    const { locks } = privateStore(cleanup, {})
    const failure = await locks
      .createLock('replica')
      .acquire()
      .catch((error) => error)
    assert.instanceOf(failure, E_LOCK_STORAGE_ERROR)
    assert.match(failure.cause.message, /READONLY/)
  })
})

/**
 * An app whose config/lock.ts has one Redis store on the test server,
 * with its own prefix; its keys are deleted after the test
 */
async function appWithRedisStore(
  cleanup: TestContext['cleanup'],
  storeConfig: Omit<RedisStoreConfig, 'connectionName'>
) {
  const prefix = uniqueKey('adonis-lock-test')
  const keys = new Redis({ port })
  cleanup(async () => {
    await deleteKeys(keys, `*${prefix}*`)
    await keys.quit()
  })
  const app = await setupLockApp(
    {
      redis: defineRedisConfig({ connection: 'main', connections: { main: { port } } }),
      lock: defineConfig({
        default: 'redis',
        prefix,
        stores: { redis: stores.redis({ connectionName: 'main', ...storeConfig }) },
      }),
    },
    'redis'
  )
  return { manager: await app.container.make('lock.manager'), keys, prefix }
}

test.group('Redis store | stores.redis on an @adonisjs/redis connection', (group) => {
  group.tap((t) => {
    t.skip(!available, 'Redis is not reachable on 127.0.0.1:6379')
    t.timeout(20_000)
  })

  test('locks through the configured connection and wakes its waiters', async ({
    assert,
    cleanup,
  }) => {
    const { manager, keys, prefix } = await appWithRedisStore(cleanup, {})

    const lock = manager.createLock('invoice.1', '10s')
    assert.isTrue(await lock.acquire())
    assert.isNumber(lock.fencingToken)
    assert.equal(await keys.get(`{${prefix}:invoice.1}`), lock.getOwner())
    const waiter = manager.createLock('invoice.1')
    const waiting = waiter.acquire({ retry: { delay: '30s', timeout: '15s' } })
    await sleep(200)
    await lock.release()
    assert.isTrue(await waiting)
    await waiter.release()
  })

  test('passes fencing: false on to the store', async ({ assert, cleanup }) => {
    const { manager, keys, prefix } = await appWithRedisStore(cleanup, { fencing: false })

    const lock = manager.createLock('invoice.2', '10s')
    assert.isTrue(await lock.acquire())
    assert.isNull(lock.fencingToken)
    assert.deepEqual(await keys.keys(`*${prefix}*`), [`{${prefix}:invoice.2}`])
    await lock.release()
  })
})
