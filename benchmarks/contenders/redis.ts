import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import Redlock from 'redlock'
import { Mutex as RedisMutex } from 'redis-semaphore'
import { redisStore } from '@verrou/core/drivers/redis'
import { RedisStore } from '../../src/stores/main.ts'
import {
  FAST_RETRY_MS,
  LOCK_TTL_MS,
  newOwner,
  type BenchTargets,
  type Contender,
  oursSession,
  type LockSession,
  type RetryMode,
  verrouSession,
} from './contender.ts'

function connect(targets: BenchTargets): Redis {
  if (!targets.redis) throw new Error('no Redis server for this run')
  return new Redis({ ...targets.redis, maxRetriesPerRequest: 1 })
}

async function disconnect(connection: Redis) {
  await connection.quit().catch(() => connection.disconnect())
}

/**
 * Owner-checked release: the usual GET + DEL script
 */
export const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

export const rawRedis: Contender = {
  id: 'raw-redis',
  label: 'raw ioredis SET NX PX + Lua',
  backend: 'redis',
  role: 'baseline',
  modes: ['fast'],
  notes: '`SET key owner PX ttl NX`; release: one EVALSHA GET+DEL owner check; polls every 10 ms',
  async open(targets): Promise<LockSession> {
    const connection = connect(targets)
    connection.defineCommand('benchRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
    const release = (key: string, owner: string) =>
      (connection as any).benchRelease(key, owner) as Promise<number>
    return {
      async acquire(key) {
        const owner = newOwner()
        while ((await connection.set(key, owner, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') {
          await sleep(FAST_RETRY_MS)
        }
        return async () => {
          if ((await release(key, owner)) !== 1) throw new Error(`${key} was not held`)
        }
      },
      close: () => disconnect(connection),
    }
  },
}

/**
 * A tokened acquire as one would write it by hand: `SET NX PX`, then the
 * key's counter `INCR`ed and given a lifetime (so counters of keys no
 * longer used go away), in one script; the token is the reply
 */
export const TOKENED_ACQUIRE_LUA = `
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return token
`

export const rawRedisTokened: Contender = {
  id: 'raw-redis-tokened',
  label: 'raw ioredis tokened script + Lua',
  backend: 'redis',
  role: 'baseline',
  /**
   * Not run contended: the contended goals measure against the ceiling
   */
  modes: [],
  notes:
    "one EVALSHA: `SET key owner PX ttl NX`, then `INCR` + `PEXPIRE` of the key's counter (same hash tag), the token as its reply; release: the same GET+DEL script as `raw-redis`; polls every 10 ms. The baseline of adonis-lock with fencing tokens",
  async open(targets): Promise<LockSession> {
    const connection = connect(targets)
    connection.defineCommand('benchTokenedAcquire', { numberOfKeys: 2, lua: TOKENED_ACQUIRE_LUA })
    connection.defineCommand('benchRelease', { numberOfKeys: 1, lua: RELEASE_LUA })
    const bench = connection as any
    return {
      async acquire(key) {
        const owner = newOwner()
        const lock = `{${key}}`
        while (
          (await bench.benchTokenedAcquire(
            lock,
            `${lock}:fencing`,
            owner,
            LOCK_TTL_MS,
            2 * LOCK_TTL_MS
          )) === null
        ) {
          await sleep(FAST_RETRY_MS)
        }
        return async () => {
          if ((await bench.benchRelease(lock, owner)) !== 1) throw new Error(`${key} was not held`)
        }
      },
      close: () => disconnect(connection),
    }
  },
}

export const oursRedis: Contender = {
  id: 'ours-redis',
  label: 'adonis-lock (redis)',
  backend: 'redis',
  role: 'ours',
  reference: 'raw-redis-tokened',
  modes: ['default', 'fast'],
  notes:
    '`new LockFactory(new RedisStore({ connection }))`; default retry: handed the lock by releases of its process, else woken on release, 250 ms fallback poll',
  open: (targets, mode) => openOurs(targets, mode, true),
}

/**
 * Ours without fencing tokens: acquire is a bare `SET NX PX`, next to
 * `ours-redis` in the same run
 */
export const oursRedisNoFencing: Contender = {
  id: 'ours-redis-nofencing',
  label: 'adonis-lock (redis, fencing: false)',
  backend: 'redis',
  role: 'ours',
  modes: ['default'],
  notes:
    'as `ours-redis`, with `new RedisStore({ connection, fencing: false })`: acquire is `SET key owner NX PX ttl`, a refused one adds a script reading the `PTTL` (and marking the lock waited for, so that its release publishes)',
  open: (targets, mode) => openOurs(targets, mode, false),
}

async function openOurs(
  targets: BenchTargets,
  mode: RetryMode,
  fencing: boolean
): Promise<LockSession> {
  const connection = connect(targets)
  return oursSession(new RedisStore({ connection, fencing }), mode, () => disconnect(connection))
}

export const verrouRedis: Contender = {
  id: 'verrou-redis',
  label: '@verrou/core (redis)',
  backend: 'redis',
  role: 'peer',
  modes: ['default', 'fast'],
  notes: '`redisStore({ connection })`; default retry: every 250 ms, no limit',
  async open(targets, mode: RetryMode): Promise<LockSession> {
    const connection = connect(targets)
    return verrouSession(redisStore({ connection }).factory(), mode, () => disconnect(connection))
  },
}

export const redlock: Contender = {
  id: 'redlock',
  label: 'redlock',
  backend: 'redis',
  role: 'peer',
  modes: ['default', 'fast'],
  notes:
    'one client; default retry: 10 retries every 200 ± 100 ms, then it throws (the worker tries again); fast: every 10 ± 5 ms, no limit',
  async open(targets, mode: RetryMode): Promise<LockSession> {
    const connection = connect(targets)
    const locks = new Redlock(
      [connection],
      mode === 'fast' ? { retryCount: -1, retryDelay: FAST_RETRY_MS, retryJitter: 5 } : {}
    )
    /**
     * Redlock reports refused attempts as events; nobody listening would
     * make them unhandled 'error' events
     */
    locks.on('error', () => {})
    return {
      async acquire(key) {
        const lock = await locks.acquire([key], LOCK_TTL_MS)
        return async () => {
          await lock.release()
        }
      },
      close: () => disconnect(connection),
    }
  },
}

export const redisSemaphore: Contender = {
  id: 'redis-semaphore',
  label: 'redis-semaphore (Mutex)',
  backend: 'redis',
  role: 'peer',
  modes: ['default', 'fast'],
  notes:
    '`new Mutex(client, key)`; default retry: SET NX every 10 ms, gives up after 10 s (so default = fast)',
  async open(targets, mode: RetryMode): Promise<LockSession> {
    const connection = connect(targets)
    return {
      async acquire(key) {
        const mutex = new RedisMutex(connection, key, {
          lockTimeout: LOCK_TTL_MS,
          ...(mode === 'fast' ? { retryInterval: FAST_RETRY_MS } : {}),
        })
        await mutex.acquire()
        return () => mutex.release()
      },
      close: () => disconnect(connection),
    }
  },
}

export const redisContenders = [
  rawRedis,
  rawRedisTokened,
  oursRedis,
  oursRedisNoFencing,
  verrouRedis,
  redlock,
  redisSemaphore,
]
