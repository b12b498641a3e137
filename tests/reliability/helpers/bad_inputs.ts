/**
 * The bad-input matrix: every way the public API and the config can be
 * misused, and the documented error each one must get. The spec runs it;
 * docs/bad_input.md lists it.
 */
import type { Redis } from 'ioredis'
import type { Knex } from 'knex'
import * as errors from '../../../src/errors.ts'
import { defineConfig } from '../../../src/define_config.ts'
import { LockFactory } from '../../../src/lock_factory.ts'
import { LockManager } from '../../../src/lock_manager.ts'
import { DatabaseStore } from '../../../src/stores/database/database_store.ts'
import { MemoryStore } from '../../../src/stores/memory.ts'
import { RedisStore } from '../../../src/stores/redis/redis_store.ts'
import type { LockStore, SerializedLock } from '../../../src/types.ts'

type ErrorClass = abstract new (...args: any[]) => Error

export interface BadInputContext {
  locks: LockFactory
  manager: LockManager
  /**
   * A lock held by someone else, serialized
   */
  serialized: SerializedLock
  /**
   * A client of the shared Redis server
   */
  redis?: Redis
  /**
   * A knex instance on the shared PostgreSQL server, and a table with
   * the locks migration applied
   */
  postgres?: { knex: Knex; tableName: string }
  /**
   * A loopback port nothing listens on
   */
  closedPort: number
}

export interface BadInput {
  /**
   * What is called, as docs/bad_input.md lists it
   */
  api: string
  /**
   * The bad input, as docs/bad_input.md shows it
   */
  input: string
  error: ErrorClass
  needs?: 'redis' | 'postgres'
  /**
   * Why the entry does not get its error yet. Its test is then expected to
   * fail, so that it starts failing (and this mark goes) once it is fixed.
   */
  knownGap?: string
  run(context: BadInputContext): unknown
}

/**
 * A store with only the lock methods
 */
class PlainStore implements LockStore {
  #store = new MemoryStore()
  save = this.#store.save.bind(this.#store)
  delete = this.#store.delete.bind(this.#store)
  forceDelete = this.#store.forceDelete.bind(this.#store)
  exists = this.#store.exists.bind(this.#store)
  extend = this.#store.extend.bind(this.#store)
}

const circular: Record<string, unknown> = {}
circular.self = circular
const memoryStore = { driver: { factory: () => new MemoryStore() } }

const keys: Array<[string, unknown]> = [
  ["''", ''],
  ['undefined', undefined],
  ['null', null],
  ['42', 42],
  ['10n', 10n],
  ["Symbol('k')", Symbol('k')],
  ['{}', {}],
  ["['a']", ['a']],
  ['a circular object', circular],
  ['1025 ASCII characters', 'x'.repeat(1025)],
  ["'é' × 513 (1026 bytes)", 'é'.repeat(513)],
  ["'\\uD800' (lone surrogate)", '\uD800'],
  ["'a\\u0000b' (NUL)", 'a\u0000b'],
]

const durations: Array<[string, unknown]> = [
  ['-1', -1],
  ['NaN', Number.NaN],
  ['Infinity', Infinity],
  ['2 ** 31', 2 ** 31],
  ["''", ''],
  ["'abc'", 'abc'],
  ["'10 years'", '10 years'],
  ["'-5s'", '-5s'],
  ["'1e3'", '1e3'],
  ['true', true],
  ['{}', {}],
  ['[]', []],
  ['10n', 10n],
]

/**
 * Durations that are fine elsewhere but not as a ttl: it would expire as
 * it is taken
 */
const ttls: Array<[string, unknown]> = [...durations, ['0', 0], ["'0s'", '0s']]

const limits: Array<[string, unknown]> = [
  ['0', 0],
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', Number.NaN],
  ['Infinity', Infinity],
  ["'2'", '2'],
  ['null', null],
  ['undefined', undefined],
  ['10n', 10n],
  ['2 ** 53', 2 ** 53],
  ['1001 (above the bound)', 1001],
]

const serializedLocks: Array<[string, (valid: SerializedLock) => unknown]> = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['42', () => 42],
  ['JSON.stringify(lock.serialize())', (valid) => JSON.stringify(valid)],
  ['{}', () => ({})],
  ["owner ''", (valid) => ({ ...valid, owner: '' })],
  ['owner 5', (valid) => ({ ...valid, owner: 5 })],
  ["owner 'a\\u0000b'", (valid) => ({ ...valid, owner: 'a\u0000b' })],
  ['ttl -1', (valid) => ({ ...valid, ttl: -1 })],
  ["ttl '10s'", (valid) => ({ ...valid, ttl: '10s' })],
  ['ttl 2 ** 40', (valid) => ({ ...valid, ttl: 2 ** 40 })],
  ["expirationTime 'soon'", (valid) => ({ ...valid, expirationTime: 'soon' })],
  ['fencingToken 1.5', (valid) => ({ ...valid, fencingToken: 1.5 })],
  ["fencingToken '3'", (valid) => ({ ...valid, fencingToken: '3' })],
]

const acquireOptions: Array<[string, unknown, ErrorClass]> = [
  ["'fast'", 'fast', errors.E_INVALID_LOCK_CONFIG],
  ['5', 5, errors.E_INVALID_LOCK_CONFIG],
  ["{ retry: 'fast' }", { retry: 'fast' }, errors.E_INVALID_LOCK_CONFIG],
  ['{ retry: false }', { retry: false }, errors.E_INVALID_LOCK_CONFIG],
  ['{ retry: null }', { retry: null }, errors.E_INVALID_LOCK_CONFIG],
  ['{ retry: { attempts: -1 } }', { retry: { attempts: -1 } }, errors.E_INVALID_LOCK_CONFIG],
  ['{ retry: { attempts: 1.5 } }', { retry: { attempts: 1.5 } }, errors.E_INVALID_LOCK_CONFIG],
  ["{ retry: { attempts: '3' } }", { retry: { attempts: '3' } }, errors.E_INVALID_LOCK_CONFIG],
  [
    '{ retry: { attempts: Infinity } }',
    { retry: { attempts: Infinity } },
    errors.E_INVALID_LOCK_CONFIG,
  ],
  ["{ signal: 'x' }", { signal: 'x' }, errors.E_INVALID_LOCK_CONFIG],
  ['{ signal: {} }', { signal: {} }, errors.E_INVALID_LOCK_CONFIG],
  ['{ retry: { delay: -5 } }', { retry: { delay: -5 } }, errors.E_INVALID_DURATION],
  ["{ retry: { delay: 'soon' } }", { retry: { delay: 'soon' } }, errors.E_INVALID_DURATION],
  ['{ retry: { delay: null } }', { retry: { delay: null } }, errors.E_INVALID_DURATION],
  ['{ retry: { timeout: -1 } }', { retry: { timeout: -1 } }, errors.E_INVALID_DURATION],
  ["{ retry: { timeout: 'x' } }", { retry: { timeout: 'x' } }, errors.E_INVALID_DURATION],
]

const configs: Array<[string, unknown]> = [
  ['undefined', undefined],
  ['null', null],
  ["'redis'", 'redis'],
  ['{}', {}],
  ["{ default: 'a' } (no stores)", { default: 'a' }],
  ["stores: 'redis'", { default: 'a', stores: 'redis' }],
  ['stores: {}', { default: 'a', stores: {} }],
  ['stores.a: null', { default: 'a', stores: { a: null } }],
  ['stores.a: {}', { default: 'a', stores: { a: {} } }],
  ['stores.a: { driver: {} }', { default: 'a', stores: { a: { driver: {} } } }],
  [
    "stores.a: { driver: { factory: 'x' } }",
    { default: 'a', stores: { a: { driver: { factory: 'x' } } } },
  ],
  ['no default', { stores: { a: memoryStore } }],
  ["default: 'b' (not a store)", { default: 'b', stores: { a: memoryStore } }],
  ["default: '__proto__'", { default: '__proto__', stores: { a: memoryStore } }],
  ["ttl: 'abc'", { default: 'a', stores: { a: memoryStore }, ttl: 'abc' }],
  ['ttl: -1', { default: 'a', stores: { a: memoryStore }, ttl: -1 }],
  ["retry: 'x'", { default: 'a', stores: { a: memoryStore }, retry: 'x' }],
  ['retry: null', { default: 'a', stores: { a: memoryStore }, retry: null }],
  ['retry.attempts: -1', { default: 'a', stores: { a: memoryStore }, retry: { attempts: -1 } }],
  ["retry.delay: 'x'", { default: 'a', stores: { a: memoryStore }, retry: { delay: 'x' } }],
  ['prefix: 42', { default: 'a', stores: { a: memoryStore }, prefix: 42 }],
]

export const BAD_INPUTS: BadInput[] = [
  ...keys.map(([input, key]): BadInput => ({
    api: 'createLock(key)',
    input,
    error: errors.E_INVALID_LOCK_KEY,
    run: ({ locks }) => locks.createLock(key as string),
  })),
  ...keys.slice(0, 3).map(([input, key]): BadInput => ({
    api: 'locks.createLock(key) (LockManager)',
    input,
    error: errors.E_INVALID_LOCK_KEY,
    run: ({ manager }) => manager.createLock(key as string),
  })),
  ...ttls.map(([input, ttl]): BadInput => ({
    api: 'createLock(key, ttl)',
    input,
    error: errors.E_INVALID_DURATION,
    run: ({ locks }) => locks.createLock('key', ttl as string),
  })),
  ...limits.map(([input, limit]): BadInput => ({
    api: 'createSemaphore(key, limit)',
    input,
    error: errors.E_INVALID_SEMAPHORE_LIMIT,
    run: ({ locks }) => locks.createSemaphore('key', limit as number),
  })),
  {
    api: 'createSemaphore(key, limit, ttl)',
    input: "ttl 'abc'",
    error: errors.E_INVALID_DURATION,
    run: ({ locks }) => locks.createSemaphore('key', 2, 'abc'),
  },
  {
    api: 'createSemaphore(key, limit, ttl)',
    input: "key ''",
    error: errors.E_INVALID_LOCK_KEY,
    run: ({ locks }) => locks.createSemaphore('', 2),
  },
  {
    api: 'createSemaphore(key, limit, ttl)',
    input: 'a store without semaphore methods',
    error: errors.E_SEMAPHORE_NOT_SUPPORTED,
    run: () => new LockFactory(new PlainStore()).createSemaphore('key', 2),
  },
  ...serializedLocks.map(([input, make]): BadInput => ({
    api: 'restoreLock(serialized)',
    input,
    error: errors.E_INVALID_SERIALIZED_LOCK,
    run: ({ locks, serialized }) => locks.restoreLock(make(serialized) as SerializedLock),
  })),
  {
    api: 'restoreLock(serialized)',
    input: "key ''",
    error: errors.E_INVALID_LOCK_KEY,
    run: ({ locks, serialized }) => locks.restoreLock({ ...serialized, key: '' }),
  },
  {
    api: 'restoreLock(serialized)',
    input: 'limit 0',
    error: errors.E_INVALID_SEMAPHORE_LIMIT,
    run: ({ locks, serialized }) => locks.restoreLock({ ...serialized, limit: 0 }),
  },
  ...["'nope'", "'__proto__'", '{}'].map((input): BadInput => ({
    api: 'locks.restoreLock(serialized) (LockManager)',
    input: `store ${input}`,
    error: errors.E_UNKNOWN_LOCK_STORE,
    run: ({ manager, serialized }) =>
      manager.restoreLock({
        ...serialized,
        store: input === '{}' ? ({} as string) : input.slice(1, -1),
      }),
  })),
  ...(
    [
      ["'nope'", 'nope'],
      ["''", ''],
      ['42', 42],
      ["'__proto__'", '__proto__'],
      ["'constructor'", 'constructor'],
      ["'toString'", 'toString'],
    ] as Array<[string, unknown]>
  ).map(([input, name]): BadInput => ({
    api: 'locks.use(name)',
    input,
    error: errors.E_UNKNOWN_LOCK_STORE,
    run: ({ manager }) => manager.use(name as string),
  })),
  ...acquireOptions.map(([input, options, error]): BadInput => ({
    api: 'lock.acquire(options)',
    input,
    error,
    run: ({ locks }) => locks.createLock('key').acquire(options as any),
  })),
  ...(
    [
      ["'x'", 'x'],
      ['null', null],
      ['undefined', undefined],
    ] as Array<[string, unknown]>
  ).map(([input, callback]): BadInput => ({
    api: 'lock.run(callback)',
    input,
    error: errors.E_INVALID_LOCK_CONFIG,
    run: ({ locks }) => locks.createLock('key').run(callback as any),
  })),
  ...[...durations.slice(0, 8), ['0', 0] as [string, unknown]].map(([input, ttl]): BadInput => ({
    api: 'lock.extend(ttl)',
    input,
    error: errors.E_INVALID_DURATION,
    run: async ({ locks }) => {
      const lock = locks.createLock(`extend:${input}`, '10s')
      await lock.acquire()
      try {
        await lock.extend(ttl as string)
      } finally {
        await lock.release()
      }
    },
  })),
  {
    api: 'lock.extend(ttl)',
    input: 'null',
    error: errors.E_INVALID_DURATION,
    run: ({ locks }) => locks.createLock('key').extend(null as any),
  },
  {
    api: 'lock.extend() / lock.release()',
    input: 'a lock never acquired',
    error: errors.E_LOCK_NOT_OWNED,
    run: ({ locks }) => locks.createLock('never').extend(),
  },
  {
    api: 'lock.extend() / lock.release()',
    input: 'a lock held by another owner',
    error: errors.E_LOCK_NOT_OWNED,
    run: ({ locks, serialized }) => locks.createLock(serialized.key).release(),
  },
  {
    api: 'lock.extend() / lock.release()',
    input: 'a lock released twice',
    error: errors.E_LOCK_NOT_OWNED,
    run: async ({ locks }) => {
      const lock = locks.createLock('twice')
      await lock.acquire()
      await lock.release()
      await lock.release()
    },
  },
  ...configs.map(([input, config]): BadInput => ({
    api: 'defineConfig(config)',
    input,
    error: errors.E_INVALID_LOCK_CONFIG,
    run: () => defineConfig(config as any),
  })),
  ...(
    [
      ['store null', () => new LockFactory(null as any)],
      ['store {}', () => new LockFactory({} as any)],
      ["options 'x'", () => new LockFactory(new MemoryStore(), 'x' as any)],
      ["options { ttl: 'abc' }", () => new LockFactory(new MemoryStore(), { ttl: 'abc' })],
      ['options { prefix: 5 }', () => new LockFactory(new MemoryStore(), { prefix: 5 as any })],
      [
        'options { storeName: 5 }',
        () => new LockFactory(new MemoryStore(), { storeName: 5 as any }),
      ],
      [
        'options { retry: { attempts: -2 } }',
        () => new LockFactory(new MemoryStore(), { retry: { attempts: -2 } }),
      ],
      ['new LockManager(undefined)', () => new LockManager(undefined as any)],
      [
        'a store factory returning null',
        () =>
          new LockManager({
            default: 'a',
            stores: { a: { driver: { factory: () => null } } },
          } as any)
            .createLock('key')
            .acquire(),
      ],
    ] as Array<[string, () => unknown]>
  ).map(([input, run]): BadInput => ({
    api: 'new LockFactory(store, options) / new LockManager(config)',
    input,
    error: errors.E_INVALID_LOCK_CONFIG,
    run,
  })),
  ...(
    [
      ['undefined', () => new RedisStore(undefined as any)],
      ['{}', () => new RedisStore({} as any)],
      ['{ connection: {} }', () => new RedisStore({ connection: {} as any })],
      [
        '{ connection, channel: 42 }',
        ({ redis }) => new RedisStore({ connection: redis!, channel: 42 as any }),
      ],
      [
        "{ connection, fencing: 'yes' }",
        ({ redis }) => new RedisStore({ connection: redis!, fencing: 'yes' as any }),
      ],
      [
        '{ connection, subscriber: connection }',
        ({ redis }) => new RedisStore({ connection: redis!, subscriber: redis! }),
      ],
    ] as Array<[string, (context: BadInputContext) => unknown]>
  ).map(([input, run]): BadInput => ({
    api: 'new RedisStore(options)',
    input,
    error: errors.E_INVALID_LOCK_CONFIG,
    needs: 'redis',
    run,
  })),
  ...(
    [
      ['undefined', () => new DatabaseStore(undefined as any)],
      ['{}', () => new DatabaseStore({} as any)],
      ['{ connection: {} }', () => new DatabaseStore({ connection: {} as any })],
      [
        "{ connection, tableName: '' }",
        ({ postgres }) => new DatabaseStore({ connection: postgres!.knex, tableName: '' }),
      ],
      [
        '{ connection, tableName: 42 }',
        ({ postgres }) => new DatabaseStore({ connection: postgres!.knex, tableName: 42 as any }),
      ],
      [
        "{ connection, preparedStatements: 'no' }",
        ({ postgres }) =>
          new DatabaseStore({ connection: postgres!.knex, preparedStatements: 'no' as any }),
      ],
      [
        'a knex client of another dialect',
        () =>
          new DatabaseStore({
            connection: { raw: () => {}, client: { dialect: 'mssql', config: {} } } as any,
          }),
      ],
    ] as Array<[string, (context: BadInputContext) => unknown]>
  ).map(([input, run]): BadInput => ({
    api: 'new DatabaseStore(options)',
    input,
    error: errors.E_INVALID_LOCK_CONFIG,
    needs: 'postgres',
    run,
  })),
  {
    api: 'lock.acquire() on a store that fails',
    input: 'Redis port closed (default ioredis options), timeout 500ms',
    error: errors.E_LOCK_STORAGE_ERROR,
    needs: 'redis',
    run: async ({ closedPort }) => {
      const { Redis: Client } = await import('ioredis')
      const connection = new Client({ port: closedPort, lazyConnect: true })
      connection.on('error', () => {})
      const store = new RedisStore({ connection })
      try {
        await new LockFactory(store).createLock('key').acquire({ retry: { timeout: 500 } })
      } finally {
        await store.close()
        connection.disconnect()
      }
    },
  },
  {
    api: 'lock.acquire() on a store that fails',
    input: 'PostgreSQL port closed',
    error: errors.E_LOCK_STORAGE_ERROR,
    needs: 'postgres',
    run: async ({ closedPort }) => {
      const { default: knex } = await import('knex')
      const connection = knex.knex({
        client: 'pg',
        connection: { host: '127.0.0.1', port: closedPort, user: 'postgres' },
        pool: { min: 0, max: 1 },
        acquireConnectionTimeout: 2000,
      })
      try {
        await new LockFactory(new DatabaseStore({ connection })).createLock('key').acquire()
      } finally {
        await connection.destroy()
      }
    },
  },
  {
    api: 'lock.acquire() on a store that fails',
    input: 'database table missing',
    error: errors.E_LOCK_STORAGE_ERROR,
    needs: 'postgres',
    run: ({ postgres }) =>
      new LockFactory(new DatabaseStore({ connection: postgres!.knex, tableName: 'no_such_locks' }))
        .createLock('key')
        .acquire(),
  },
]
