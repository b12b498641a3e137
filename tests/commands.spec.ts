import { ListLoader } from '@adonisjs/core/ace'
import type { BaseCommand } from '@adonisjs/core/ace'
import { IgnitorFactory } from '@adonisjs/core/factories/core/ignitor'
import { defineConfig as defineDatabaseConfig } from '@adonisjs/lucid'
import { defineConfig as defineRedisConfig } from '@adonisjs/redis'
import { test } from '@japa/runner'
import LockPrune from '../commands/lock_prune.ts'
import LockRelease from '../commands/lock_release.ts'
import LockStatus from '../commands/lock_status.ts'
import { defineConfig, errors, stores } from '../index.ts'
import type { LockManager } from '../src/lock_manager.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import { PRUNE_GRACE } from '../src/stores/database/database_store.ts'
import type { LockStore, StoreEntry } from '../src/types.ts'
import { sleep } from '../src/wait.ts'
import { APP_ROOT } from './helpers/app.ts'
import { removeSqliteFile, runLocksMigration, sqliteFile, uniqueName } from './helpers/databases.ts'
import { SERVICES, serviceAvailable, uniqueKey } from './helpers/services.ts'

/**
 * A store with only the required methods: the commands must make do
 */
class BareStore implements LockStore {
  #memory = new MemoryStore()
  save: LockStore['save'] = (...args) => this.#memory.save(...args)
  delete: LockStore['delete'] = (...args) => this.#memory.delete(...args)
  forceDelete: LockStore['forceDelete'] = (...args) => this.#memory.forceDelete(...args)
  exists: LockStore['exists'] = (...args) => this.#memory.exists(...args)
  extend: LockStore['extend'] = (...args) => this.#memory.extend(...args)
}

interface AppOptions {
  stores?: Record<string, StoreEntry>
  defaultStore?: string
  redis?: boolean
  sqlite?: { file: string; tableName: string }
}

/**
 * A booted console app with this package's provider and commands, on the
 * memory store plus what the test asks for
 */
async function setupConsoleApp(
  cleanup: (callback: () => Promise<void>) => void,
  options: AppOptions = {}
) {
  const providers: any[] = []
  const config: Record<string, unknown> = {}
  if (options.redis) {
    providers.push(() => import('@adonisjs/redis/redis_provider'))
    config.redis = defineRedisConfig({
      connection: 'main',
      connections: { main: { host: SERVICES.redis.host, port: SERVICES.redis.port } },
    })
  }
  if (options.sqlite) {
    providers.push(() => import('@adonisjs/lucid/database_provider'))
    config.database = defineDatabaseConfig({
      connection: 'sqlite',
      connections: {
        sqlite: {
          client: 'better-sqlite3',
          connection: { filename: options.sqlite.file },
          useNullAsDefault: true,
        },
      },
    })
  }
  providers.push(() => import('../providers/lock_provider.ts'))
  config.lock = defineConfig({
    default: (options.defaultStore ?? 'memory') as 'memory',
    ttl: '10s',
    stores: { memory: stores.memory(), ...options.stores },
  })

  const app = new IgnitorFactory()
    .withCoreProviders()
    .withCoreConfig()
    .merge({ rcFileContents: { providers }, config })
    .create(APP_ROOT, {
      importer: (filePath) => import(filePath),
    })
    .createApp('console')
  await app.init()
  await app.boot()
  cleanup(() => app.terminate())

  const ace = await app.container.make('ace')
  ace.ui.switchMode('raw')
  ace.addLoader(new ListLoader([LockStatus, LockRelease, LockPrune]))
  const locks = (await app.container.make('lock.manager')) as unknown as LockManager
  return { app, ace, locks }
}

function output(command: BaseCommand) {
  return command.logger
    .getLogs()
    .map((log) => log.message)
    .join('\n')
}

function jsonOutput(command: BaseCommand) {
  return JSON.parse(command.logger.getLogs().at(-1)!.message)
}

test.group('Commands | lock:status', (group) => {
  group.each.timeout(30_000)

  test('a free key', async ({ assert, cleanup }) => {
    const { ace } = await setupConsoleApp(cleanup)
    const command = await ace.exec('lock:status', ['order.1'])
    command.assertSucceeded()
    assert.include(output(command), 'Lock "order.1" is free (store "memory", key "lock:order.1")')
    assert.include(output(command), 'keeps locks in the memory of each process')

    const json = await ace.exec('lock:status', ['order.1', '--json'])
    assert.deepEqual(jsonOutput(json), {
      key: 'order.1',
      store: 'memory',
      storeKey: 'lock:order.1',
      held: false,
      owner: null,
      expiresIn: null,
      fencingToken: null,
    })
  })

  test('a held key: owner, remaining ms, fencing token', async ({ assert, cleanup }) => {
    const { ace, locks } = await setupConsoleApp(cleanup)
    const lock = locks.createLock('order.2', '10s')
    assert.isTrue(await lock.acquireImmediately())

    const json = jsonOutput(await ace.exec('lock:status', ['order.2', '--json']))
    assert.containSubset(json, {
      held: true,
      owner: lock.getOwner(),
      fencingToken: lock.fencingToken,
    })
    assert.isAbove(json.expiresIn, 0)
    assert.isAtMost(json.expiresIn, 10_000)

    const command = await ace.exec('lock:status', ['order.2'])
    command.assertSucceeded()
    const text = output(command)
    assert.include(text, 'Lock "order.2" is held (store "memory", key "lock:order.2")')
    assert.include(text, `owner:          ${lock.getOwner()}`)
    assert.match(text, /expires: {8}in \d+ ms/)
    assert.include(text, `fencing token:  ${lock.fencingToken}`)
  })

  test('a lock without expiry', async ({ assert, cleanup }) => {
    const { ace, locks } = await setupConsoleApp(cleanup)
    await locks.createLock('forever', null).acquire()
    assert.include(output(await ace.exec('lock:status', ['forever'])), 'expires:        never')
    const json = jsonOutput(await ace.exec('lock:status', ['forever', '--json']))
    assert.propertyVal(json, 'expiresIn', null)
  })

  test('a store without inspect() or owner() still tells held or free', async ({
    assert,
    cleanup,
  }) => {
    const { ace, locks } = await setupConsoleApp(cleanup, {
      stores: { bare: { driver: { factory: () => new BareStore() } } },
    })
    await locks.use('bare').createLock('report').acquire()

    const json = jsonOutput(await ace.exec('lock:status', ['report', '--store=bare', '--json']))
    assert.isTrue(json.held)
    /**
     * Unknown is left out, unlike `null` ("never expires", "no token")
     */
    for (const field of ['owner', 'expiresIn', 'fencingToken']) assert.notProperty(json, field)
    const text = output(await ace.exec('lock:status', ['report', '--store', 'bare']))
    assert.include(text, 'Lock "report" is held (store "bare"')
    assert.include(text, 'owner:          dim(unknown (the store cannot tell))')
    assert.notInclude(text, 'memory of each process')
  })

  test('a store with owner() but no inspect() tells the owner', async ({ assert, cleanup }) => {
    class OwnerStore extends BareStore {
      #memory = new MemoryStore()
      save: LockStore['save'] = (...args) => this.#memory.save(...args)
      delete: LockStore['delete'] = (...args) => this.#memory.delete(...args)
      forceDelete: LockStore['forceDelete'] = (...args) => this.#memory.forceDelete(...args)
      exists: LockStore['exists'] = (...args) => this.#memory.exists(...args)
      extend: LockStore['extend'] = (...args) => this.#memory.extend(...args)
      owner = (key: string) => this.#memory.owner(key)
    }
    const { ace, locks } = await setupConsoleApp(cleanup, {
      stores: { owned: { driver: { factory: () => new OwnerStore() } } },
    })
    const lock = locks.use('owned').createLock('report', '10s')
    await lock.acquire()

    const json = jsonOutput(await ace.exec('lock:status', ['report', '--store=owned', '--json']))
    assert.deepEqual({ held: json.held, owner: json.owner }, { held: true, owner: lock.getOwner() })
    const text = output(await ace.exec('lock:status', ['report', '--store=owned']))
    assert.include(text, `owner:          ${lock.getOwner()}`)
  })

  test('an unknown store or a bad key fails with a message', async ({ assert, cleanup }) => {
    const { ace } = await setupConsoleApp(cleanup)
    const unknown = await ace.exec('lock:status', ['a', '--store=nope'])
    unknown.assertFailed()
    assert.include(output(unknown), 'Unknown lock store "nope". Configured stores: "memory"')

    const badKey = await ace.exec('lock:status', ['x'.repeat(2000)])
    badKey.assertFailed()
    assert.include(output(badKey), 'at most 1024 bytes')
  })

  test('a failing store is reported as a storage error', async ({ assert, cleanup }) => {
    class BrokenStore extends BareStore {
      exists = async () => {
        throw new Error('connection refused')
      }
    }
    const { ace } = await setupConsoleApp(cleanup, {
      stores: { broken: { driver: { factory: () => new BrokenStore() } } },
    })
    const command = await ace.exec('lock:status', ['a', '--store=broken'])
    command.assertFailed()
    assert.include(output(command), 'The lock store failed: inspect "a": connection refused')
  })
})

test.group('Commands | lock:release', (group) => {
  let isTTY: boolean | undefined
  group.each.setup(() => {
    isTTY = process.stdin.isTTY
    process.stdin.isTTY = false
    return () => {
      process.stdin.isTTY = isTTY as boolean
    }
  })
  group.each.timeout(30_000)

  test('--force releases whoever holds the lock', async ({ assert, cleanup }) => {
    const { ace, locks } = await setupConsoleApp(cleanup)
    const lock = locks.createLock('invoice.1')
    await lock.acquire()

    const command = await ace.exec('lock:release', ['invoice.1', '--force'])
    command.assertSucceeded()
    assert.include(output(command), 'Released lock "invoice.1" on store "memory"')
    assert.isFalse(await lock.isLocked())
    await assert.rejects(() => lock.release(), errors.E_LOCK_NOT_OWNED as any)
  })

  test('without --force and without a terminal it refuses', async ({ assert, cleanup }) => {
    const { ace, locks } = await setupConsoleApp(cleanup)
    const lock = locks.createLock('invoice.2')
    await lock.acquire()

    const command = await ace.exec('lock:release', ['invoice.2'])
    command.assertFailed()
    assert.include(output(command), 're-run with --force')
    assert.isTrue(await lock.isOwned())
  })

  test('asks for confirmation in a terminal', async ({ assert, cleanup }) => {
    process.stdin.isTTY = true
    const { ace, locks } = await setupConsoleApp(cleanup)
    const lock = locks.createLock('invoice.3')
    await lock.acquire()
    const question = `Force release lock "invoice.3" held by ${lock.getOwner()} on store "memory"?`

    ace.prompt.trap(question).reject()
    const declined = await ace.exec('lock:release', ['invoice.3'])
    declined.assertSucceeded()
    assert.include(output(declined), 'Nothing released')
    assert.isTrue(await lock.isOwned())

    ace.prompt.trap(question).accept()
    const accepted = await ace.exec('lock:release', ['invoice.3'])
    accepted.assertSucceeded()
    assert.isFalse(await lock.isLocked())
  })

  test('a failing store: --force exits with a storage error', async ({ assert, cleanup }) => {
    class BrokenStore extends BareStore {
      forceDelete = async () => {
        throw new Error('connection reset')
      }
    }
    const { ace, locks } = await setupConsoleApp(cleanup, {
      stores: { broken: { driver: { factory: () => new BrokenStore() } } },
    })
    await locks.use('broken').createLock('invoice.4').acquire()
    const command = await ace.exec('lock:release', ['invoice.4', '--store=broken', '--force'])
    command.assertFailed()
    assert.equal(command.exitCode, 1)
    assert.include(output(command), 'connection reset')
    assert.isTrue(await locks.use('broken').createLock('invoice.4').isLocked())
  })

  test('a free key: nothing to release', async ({ assert, cleanup }) => {
    const { ace } = await setupConsoleApp(cleanup)
    const command = await ace.exec('lock:release', ['nobody'])
    command.assertSucceeded()
    assert.include(
      output(command),
      'Lock "nobody" is not held on store "memory": nothing to release'
    )
  })
})

test.group('Commands | lock:prune', (group) => {
  group.each.timeout(30_000)

  test('stores that keep no expired locks have nothing to prune', async ({ assert, cleanup }) => {
    const { ace } = await setupConsoleApp(cleanup, {
      stores: { bare: { driver: { factory: () => new BareStore() } } },
    })
    const all = await ace.exec('lock:prune', [])
    all.assertSucceeded()
    assert.include(output(all), 'No configured store keeps expired locks: nothing to prune')

    const one = await ace.exec('lock:prune', ['--store=memory'])
    one.assertSucceeded()
    assert.include(output(one), 'The "memory" store keeps no expired locks: nothing to prune')

    const unknown = await ace.exec('lock:prune', ['--store=nope'])
    unknown.assertFailed()
    assert.include(output(unknown), 'Unknown lock store "nope"')
  })

  test('a failing store exits with a storage error', async ({ assert, cleanup }) => {
    class BrokenStore extends BareStore {
      prune = async (): Promise<number> => {
        throw new Error('disk full')
      }
    }
    const { ace } = await setupConsoleApp(cleanup, {
      stores: { broken: { driver: { factory: () => new BrokenStore() } } },
    })
    const command = await ace.exec('lock:prune', ['--store=broken'])
    command.assertFailed()
    assert.equal(command.exitCode, 1)
    assert.include(output(command), 'The lock store failed: prune the "broken" store: disk full')
  })
})

test.group('Commands | a broken config/lock.ts', (group) => {
  group.each.timeout(30_000)

  test('every command exits with code 1 and the message', async ({ assert, cleanup }) => {
    const { app, ace } = await setupConsoleApp(cleanup)
    app.container.bind('lock.manager', () => {
      throw new errors.E_INVALID_LOCK_CONFIG('config/lock.ts: no stores')
    })
    for (const [name, args] of [
      ['lock:status', ['a']],
      ['lock:release', ['a', '--force']],
      ['lock:prune', []],
      ['lock:prune', ['--store=memory']],
    ] as const) {
      const command = await ace.exec(name, [...args])
      command.assertFailed()
      /**
       * A message, not an exception ace prints with its stack
       */
      assert.isUndefined(command.error, `${name} threw`)
      assert.equal(command.exitCode, 1, name)
      assert.include(output(command), 'config/lock.ts: no stores', name)
    }
  })
})

test.group('Commands | database store (SQLite)', (group) => {
  group.each.timeout(30_000)

  async function setupDatabaseApp(cleanup: (callback: () => Promise<void>) => void) {
    const file = await sqliteFile()
    const tableName = uniqueName('locks')
    cleanup(() => removeSqliteFile(file))
    const setup = await setupConsoleApp(cleanup, {
      sqlite: { file, tableName },
      stores: { database: stores.database({ tableName }) },
      defaultStore: 'database',
    })
    const db = await setup.app.container.make('lucid.db')
    await runLocksMigration(db.connection(), tableName)
    return { ...setup, db, tableName }
  }

  test('lock:status reads owner, expiry and fencing token from the table', async ({
    assert,
    cleanup,
  }) => {
    const { ace, locks } = await setupDatabaseApp(cleanup)
    const lock = locks.createLock('order.9', '20s')
    assert.isTrue(await lock.acquireImmediately())

    const json = jsonOutput(await ace.exec('lock:status', ['order.9', '--json']))
    assert.containSubset(json, {
      store: 'database',
      held: true,
      owner: lock.getOwner(),
      fencingToken: lock.fencingToken,
    })
    assert.isAbove(json.expiresIn, 0)
    assert.isAtMost(json.expiresIn, 20_000)

    const release = await ace.exec('lock:release', ['order.9', '--force'])
    release.assertSucceeded()
    assert.isFalse(await lock.isLocked())
  })

  test('lock:prune deletes the expired rows', async ({ assert, cleanup }) => {
    const { ace, locks, db, tableName } = await setupDatabaseApp(cleanup)
    await locks.createLock('short.1', 20).acquire()
    await locks.createLock('short.2', 20).acquire()
    const kept = locks.createLock('long', '1m')
    await kept.acquire()
    await sleep(PRUNE_GRACE + 500)

    const command = await ace.exec('lock:prune', [])
    command.assertSucceeded()
    assert.include(output(command), 'Pruned 2 expired locks from the "database" store')
    assert.isTrue(await kept.isOwned())

    const again = await ace.exec('lock:prune', ['--store=database'])
    assert.include(output(again), 'Pruned 0 expired locks from the "database" store')
    assert.lengthOf(await db.connection().from(tableName).select('key'), 1)
  })
})

const redisAvailable = await serviceAvailable('redis')

test.group('Commands | redis store', (group) => {
  group.each.timeout(30_000)
  group.tap((t) => t.skip(!redisAvailable, 'Redis is not reachable'))

  test('lock:status and lock:release on Redis', async ({ assert, cleanup }) => {
    const { ace, locks } = await setupConsoleApp(cleanup, {
      redis: true,
      stores: { redis: stores.redis() },
      defaultStore: 'redis',
    })
    const key = uniqueKey('commands')
    const lock = locks.createLock(key, '20s')
    assert.isTrue(await lock.acquireImmediately())
    cleanup(async () => {
      await lock.forceRelease()
    })

    const json = jsonOutput(await ace.exec('lock:status', [key, '--json']))
    assert.containSubset(json, {
      store: 'redis',
      held: true,
      owner: lock.getOwner(),
      fencingToken: lock.fencingToken,
    })
    assert.isNumber(lock.fencingToken)
    assert.isAbove(json.expiresIn, 0)
    assert.isAtMost(json.expiresIn, 20_000)
    assert.include(
      output(await ace.exec('lock:status', [key])),
      `fencing token:  ${lock.fencingToken}`
    )

    const release = await ace.exec('lock:release', [key, '--force'])
    release.assertSucceeded()
    assert.isFalse(await lock.isLocked())
    const free = jsonOutput(await ace.exec('lock:status', [key, '--json']))
    assert.isFalse(free.held)
  })
})
