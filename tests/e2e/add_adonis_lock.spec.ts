import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from '@japa/runner'
import knex from 'knex'
import { SERVICES, serviceAvailable } from '../helpers/services.ts'
import { writeFixtureApp } from './fixture_app.ts'
import {
  ace,
  burst,
  ENV,
  expectSuccess,
  installPackage,
  packPackage,
  PACKAGE_ROOT,
  run,
  startServer,
  type AppServer,
} from './helpers.ts'

/**
 * The user's path, for real: `npm pack` of this package installed into a
 * fresh AdonisJS 7 app, `node ace configure adonis-lock`, then HTTP
 * servers of that app racing for the same lock
 */
const STAGE = join(PACKAGE_ROOT, 'tmp', `e2e_${process.pid}`)
const APP = join(STAGE, 'app')
const DATABASE = `adonis_lock_e2e_${process.pid}`
const RUN = `${process.pid}-${Date.now().toString(36)}`
const CONTENDERS = 20

const redisAvailable = await serviceAvailable('redis')
const postgresAvailable = await serviceAvailable('postgres')

function postgres(database = 'postgres') {
  const { host, port, user } = SERVICES.postgres
  return knex({
    client: 'pg',
    connection: { host, port, user, database },
    pool: { min: 0, max: 1 },
  })
}

async function withServers<T>(count: number, callback: (servers: AppServer[]) => Promise<T>) {
  const started = await Promise.allSettled(Array.from({ length: count }, () => startServer(APP)))
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  try {
    const failed = started.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
    /**
     * First requests load the routes' lazy imports and open the store
     * connections: done before the race, so every contender arrives
     * while the winner still holds the lock
     */
    for (const server of servers) {
      const warm = await fetch(`${server.url}/hold/warmup-${RUN}?ms=0`, { method: 'POST' })
      if (warm.status !== 200) throw new Error(`warm-up got ${warm.status}\n${server.output()}`)
    }
    return await callback(servers)
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
  }
}

let preparation: Promise<void> | undefined

/**
 * Packs the package and writes the app, once. Called by every test
 * rather than in a group hook, so a failure shows as failed tests.
 */
function prepare() {
  preparation ??= (async () => {
    await rm(STAGE, { recursive: true, force: true })
    await mkdir(STAGE, { recursive: true })
    const tarball = await packPackage(STAGE)
    await writeFixtureApp(APP, { database: DATABASE })
    await installPackage(APP, tarball)
    if (postgresAvailable) {
      const db = postgres()
      try {
        await db.raw(`DROP DATABASE IF EXISTS ${DATABASE}`)
        await db.raw(`CREATE DATABASE ${DATABASE}`)
      } finally {
        await db.destroy()
      }
    }
  })()
  return preparation
}

test.group('E2E | node ace add adonis-lock in a real app', (group) => {
  /**
   * Cleans up what `prepare()` made, whatever the tests did
   */
  group.teardown(async () => {
    if (!preparation) return
    await preparation.catch(() => {})
    if (postgresAvailable) {
      const db = postgres()
      try {
        await db.raw(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`)
      } finally {
        await db.destroy()
      }
    }
    await rm(STAGE, { recursive: true, force: true })
  })
  group.each.timeout(180_000)

  test(`configure --store=memory --middleware: one winner out of ${CONTENDERS} requests`).run(
    async ({ assert }) => {
      const count = CONTENDERS
      await prepare()
      const configured = await expectSuccess(
        ace(APP, ['configure', 'adonis-lock', '--store=memory', '--middleware']),
        'configure'
      )
      assert.notInclude(configured.output, 'No --store flag')
      const rcFile = await readFile(join(APP, 'adonisrc.ts'), 'utf-8')
      assert.include(rcFile, `() => import('adonis-lock/lock_provider')`)
      assert.include(rcFile, `() => import('adonis-lock/commands')`)
      const env = await readFile(join(APP, '.env'), 'utf-8')
      assert.include(env, 'LOCK_STORE=memory')
      assert.include(
        await readFile(join(APP, 'start/kernel.ts'), 'utf-8'),
        `lock: () => import('adonis-lock/lock_middleware')`
      )

      await withServers(1, async (servers) => {
        const held = await burst(servers, `/hold/memory-${RUN}?ms=1500`, count)
        assert.deepEqual(held.statuses, { 200: 1, 409: count - 1 })

        const guarded = await burst(servers, '/guarded', count, { order: RUN, ms: 1500 })
        assert.deepEqual(guarded.statuses, { 200: 1, 409: count - 1 })
        const refused = guarded.responses.find((response) => response.status === 409)!
        assert.isNotNull(refused.retryAfter)
      })
    }
  )

  test('the Ace commands are registered from the built package', async ({ assert }) => {
    await prepare()
    const list = await expectSuccess(ace(APP, ['list', 'lock']), 'list')
    for (const name of ['lock:status', 'lock:release', 'lock:prune'])
      assert.include(list.output, name)

    const status = await expectSuccess(ace(APP, ['lock:status', 'order.1', '--json']), 'status')
    assert.containSubset(JSON.parse(status.stdout.trim().split('\n').at(-1)!), {
      key: 'order.1',
      store: 'memory',
      held: false,
    })
    const prune = await expectSuccess(ace(APP, ['lock:prune']), 'prune')
    assert.include(prune.output, 'nothing to prune')
    const release = await ace(APP, ['lock:release', 'order.1'])
    assert.equal(release.code, 0, release.output)
    assert.include(release.output, 'nothing to release')
  })

  test(`configure --store=redis: two servers, one winner out of ${CONTENDERS} requests`)
    .skip(!redisAvailable, 'Redis is not reachable')
    .run(async ({ assert }) => {
      const count = CONTENDERS
      await prepare()
      await expectSuccess(ace(APP, ['configure', 'adonis-lock', '--store=redis']), 'configure')
      const config = await readFile(join(APP, 'config/lock.ts'), 'utf-8')
      assert.include(config, 'redis: stores.redis()')
      assert.include(config, 'memory: stores.memory()')
      assert.include(await readFile(join(APP, '.env'), 'utf-8'), 'LOCK_STORE=redis')

      await withServers(2, async (servers) => {
        const { statuses, responses } = await burst(servers, `/hold/redis-${RUN}?ms=1500`, count)
        assert.deepEqual(statuses, { 200: 1, 409: count - 1 })
        assert.isNumber(responses.find((response) => response.status === 200)!.body?.fencingToken)
      })
    })

  test(
    `configure --store=database: migration, two servers, one winner out of ${CONTENDERS} requests`
  )
    .skip(!postgresAvailable, 'PostgreSQL is not reachable')
    .run(async ({ assert }) => {
      const count = CONTENDERS
      await prepare()
      await expectSuccess(ace(APP, ['configure', 'adonis-lock', '--store=database']), 'configure')
      const migrations = await readdir(join(APP, 'database/migrations'))
      assert.lengthOf(
        migrations.filter((file) => file.endsWith('_create_locks_table.ts')),
        1
      )
      await expectSuccess(ace(APP, ['migration:run']), 'migration:run')

      await withServers(2, async (servers) => {
        const { statuses } = await burst(servers, `/hold/database-${RUN}?ms=1500`, count)
        assert.deepEqual(statuses, { 200: 1, 409: count - 1 })
      })

      const status = await expectSuccess(
        ace(APP, ['lock:status', `e2e.database-${RUN}`, '--json']),
        'lock:status'
      )
      assert.containSubset(JSON.parse(status.stdout.trim().split('\n').at(-1)!), {
        store: 'database',
        held: false,
      })
      const prune = await expectSuccess(ace(APP, ['lock:prune']), 'lock:prune')
      assert.match(prune.output, /Pruned \d+ expired locks? from the "database" store/)
    })

  test('the generated code passes the app typecheck and lint', async ({ assert }) => {
    await prepare()
    const env = await readFile(join(APP, 'start/env.ts'), 'utf-8')
    const config = await readFile(join(APP, 'config/lock.ts'), 'utf-8')
    const stores = [...config.matchAll(/^ {4}(\w+): stores\./gm)].map((match) => match[1])
    assert.include(
      env,
      `LOCK_STORE: Env.schema.enum([${stores.map((name) => `'${name}'`).join(', ')}] as const)`
    )

    const typecheck = await run(
      process.execPath,
      [join(PACKAGE_ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit'],
      {
        cwd: APP,
      }
    )
    assert.equal(typecheck.code, 0, typecheck.output)

    const generated = ['config/lock.ts']
    const migrations = await readdir(join(APP, 'database/migrations')).catch(() => [])
    generated.push(...migrations.map((file) => `database/migrations/${file}`))
    const lint = await run(
      process.execPath,
      [join(PACKAGE_ROOT, 'node_modules/eslint/bin/eslint.js'), ...generated],
      {
        cwd: APP,
      }
    )
    assert.equal(lint.code, 0, lint.output)
  })

  test('node ace add forwards --store and --install to the configure hook', async ({ assert }) => {
    await prepare()
    /**
     * The package is in node_modules already: a package manager that
     * records its call stands in for the registry
     */
    const bin = join(STAGE, 'fake-package-manager')
    const calls = join(bin, 'calls.log')
    await mkdir(bin, { recursive: true })
    for (const name of ['npm', 'pnpm', 'yarn', 'bun']) {
      await writeFile(join(bin, name), `#!/bin/sh\necho "${name} $*" >> "${calls}"\nexit 0\n`)
      await chmod(join(bin, name), 0o755)
    }
    const added = await expectSuccess(
      ace(APP, ['add', 'adonis-lock', '--store=redis', '--store=memory', '--install'], {
        PATH: `${bin}:${ENV.PATH}`,
      }),
      'add'
    )
    assert.match(await readFile(calls, 'utf8'), /install.* adonis-lock/)
    assert.notInclude(added.output, 'No --store flag')
    assert.notInclude(added.output, 'Unknown flag')
    const config = await readFile(join(APP, 'config/lock.ts'), 'utf8')
    assert.include(config, 'stores.redis(')
    assert.include(config, 'stores.memory(')
    assert.include(await readFile(join(APP, '.env'), 'utf8'), 'LOCK_STORE=redis')
  })
})
