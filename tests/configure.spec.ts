import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ListLoader } from '@adonisjs/core/ace'
import Configure from '@adonisjs/core/commands/configure'
import { IgnitorFactory } from '@adonisjs/core/factories/core/ignitor'
import type { FileSystem } from '@japa/file-system'
import { test } from '@japa/runner'
import prettier from 'prettier'

/**
 * A directory of this process: other test runs may use tmp/fs meanwhile
 */
const BASE_URL = new URL(`../tmp/configure_${process.pid}/`, import.meta.url)

const PACKAGE = '../../index.ts'

const ENV_FILE = `import { Env } from '@adonisjs/core/env'

export default await Env.create(new URL('../', import.meta.url), {
  NODE_ENV: Env.schema.enum(['development', 'production', 'test'] as const),
})
`

const KERNEL_FILE = `import router from '@adonisjs/core/services/router'
import server from '@adonisjs/core/services/server'

server.use([])

router.use([() => import('@adonisjs/core/bodyparser_middleware')])

export const middleware = router.named({})
`

const RC_FILE = `import { defineConfig } from '@adonisjs/core/app'

export default defineConfig({
  commands: [() => import('@adonisjs/core/commands')],
  providers: [
    () => import('@adonisjs/core/providers/app_provider'),
    () => import('@adonisjs/redis/redis_provider'),
    () => import('@adonisjs/lucid/database_provider'),
  ],
})
`

/**
 * The fake app of a test: what `npm init adonisjs` writes that the hook
 * touches. By default @adonisjs/redis and @adonisjs/lucid are installed
 * and configured.
 */
async function createApp(fs: FileSystem, files: Record<string, string> = {}) {
  await fs.create('.env', 'NODE_ENV=development\n')
  await fs.create('.env.example', 'NODE_ENV=development\n')
  await fs.createJson('tsconfig.json', {})
  await fs.createJson('package.json', {
    name: 'app',
    type: 'module',
    dependencies: {
      '@adonisjs/core': '^7.0.0',
      '@adonisjs/redis': '^10.0.0',
      '@adonisjs/lucid': '^22.0.0',
    },
  })
  await fs.create('start/env.ts', ENV_FILE)
  await fs.create('start/kernel.ts', KERNEL_FILE)
  await fs.create('adonisrc.ts', RC_FILE)
  for (const [path, contents] of Object.entries(files)) await fs.create(path, contents)

  const ignitor = new IgnitorFactory()
    .withCoreProviders()
    .withCoreConfig()
    .create(fs.baseUrl, {
      importer: (filePath) => {
        if (filePath.startsWith('./') || filePath.startsWith('../')) {
          return import(new URL(filePath, fs.baseUrl).href)
        }
        return import(filePath)
      },
    })
  const app = ignitor.createApp('console')
  await app.init()
  await app.boot()

  const ace = await app.container.make('ace')
  ace.ui.switchMode('raw')
  ace.addLoader(new ListLoader([Configure]))
  return { app, ace }
}

async function runConfigure(fs: FileSystem, argv: string[], setup?: (ace: any) => void) {
  const { ace } = await createApp(fs)
  return runIn(ace, argv, setup)
}

async function runIn(
  ace: Awaited<ReturnType<typeof createApp>>['ace'],
  argv: string[],
  setup?: (ace: any) => void
) {
  setup?.(ace)
  const command = await ace.create(Configure, [PACKAGE, ...argv])
  await command.exec()
  return command
}

async function succeed(ace: Awaited<ReturnType<typeof createApp>>['ace'], argv: string[]) {
  const command = await runIn(ace, argv)
  command.assertSucceeded()
  return command
}

function count(text: string, needle: string) {
  return text.split(needle).length - 1
}

function output(command: Configure) {
  return command.logger
    .getLogs()
    .map((log) => log.message)
    .join('\n')
}

async function migrations(fs: FileSystem) {
  const files = await readdir(fileURLToPath(new URL('database/migrations/', fs.baseUrl))).catch(
    () => []
  )
  return files.filter((file) => file.endsWith('_create_locks_table.ts'))
}

async function assertPrettier(fs: FileSystem, path: string) {
  const options = await prettier.resolveConfig(fileURLToPath(import.meta.url))
  const source = await fs.contents(path)
  const formatted = await prettier.format(source, { ...options, parser: 'typescript' })
  return { source, formatted }
}

test.group('Configure', (group) => {
  let isTTY: boolean | undefined

  group.each.setup(({ context }) => {
    context.fs.baseUrl = BASE_URL
    context.fs.basePath = fileURLToPath(BASE_URL)
    /**
     * Each test says whether a terminal is there; none by default, as in CI
     */
    isTTY = process.stdin.isTTY
    process.stdin.isTTY = false
    return () => {
      process.stdin.isTTY = isTTY as boolean
    }
  })
  group.each.timeout(60_000)

  test('--store=redis registers provider and commands, writes config and env', async ({
    assert,
    fs,
  }) => {
    const command = await runConfigure(fs, ['--store=redis'])
    command.assertSucceeded()

    await assert.fileContains('adonisrc.ts', [
      `() => import('adonis-lock/lock_provider')`,
      `() => import('adonis-lock/commands')`,
    ])
    await assert.fileContains('config/lock.ts', [
      `default: env.get('LOCK_STORE')`,
      `redis: stores.redis(),`,
      `memory: stores.memory(),`,
      `export interface LockStoresList extends InferLockStores<typeof lockConfig> {}`,
    ])
    await assert.fileNotContains('config/lock.ts', 'stores.database')
    await assert.fileContains('.env', 'LOCK_STORE=redis')
    await assert.fileContains('.env.example', 'LOCK_STORE=redis')
    await assert.fileContains(
      'start/env.ts',
      `LOCK_STORE: Env.schema.enum(['redis', 'memory'] as const)`
    )
    assert.deepEqual(await migrations(fs), [])
    assert.include(output(command), 'Skipped the "lock" named middleware')
  })

  test('--store=database also writes the locks table migration', async ({ assert, fs }) => {
    const command = await runConfigure(fs, ['--store=database'])
    command.assertSucceeded()

    await assert.fileContains('config/lock.ts', [
      `database: stores.database({ tableName: 'locks' }),`,
      `memory: stores.memory(),`,
    ])
    await assert.fileContains('.env', 'LOCK_STORE=database')
    await assert.fileContains(
      'start/env.ts',
      `LOCK_STORE: Env.schema.enum(['database', 'memory'] as const)`
    )
    const [migration] = await migrations(fs)
    assert.match(migration, /^\d{13}_create_locks_table\.ts$/)
    await assert.fileContains(`database/migrations/${migration}`, [
      `protected tableName = 'locks'`,
      `table.string('key', 255).notNullable().primary()`,
      `table.bigint('fencing').notNullable().defaultTo(0)`,
    ])
  })

  test('several stores: comma list or repeated flag; the first is the default', async ({
    assert,
    fs,
  }) => {
    for (const argv of [['--store=redis,database'], ['--store=redis', '--store=database']]) {
      await fs.cleanup()
      const command = await runConfigure(fs, argv)
      command.assertSucceeded()
      await assert.fileContains('config/lock.ts', [
        'stores.redis()',
        'stores.database(',
        'stores.memory()',
      ])
      await assert.fileContains('.env', 'LOCK_STORE=redis')
      await assert.fileContains(
        'start/env.ts',
        `LOCK_STORE: Env.schema.enum(['redis', 'database', 'memory'] as const)`
      )
      assert.lengthOf(await migrations(fs), 1)
    }
  })

  test('an unknown store fails and writes nothing', async ({ assert, fs }) => {
    const command = await runConfigure(fs, ['--store=redis,dynamodb'])
    command.assertFailed()
    assert.include(
      output(command),
      'Unknown lock store "dynamodb". Supported stores: redis, database, memory'
    )
    await assert.fileNotExists('config/lock.ts')
    await assert.fileNotContains('adonisrc.ts', 'adonis-lock')
    await assert.fileNotContains('.env', 'LOCK_STORE')
  })

  test('--store without a value fails', async ({ assert, fs }) => {
    const command = await runConfigure(fs, ['--store'])
    command.assertFailed()
    assert.include(output(command), 'The --store flag needs a value')
  })

  test('without a terminal and without --store: memory, said out loud', async ({ assert, fs }) => {
    const command = await runConfigure(fs, [])
    command.assertSucceeded()
    assert.include(
      output(command),
      'No --store flag and no terminal to ask: configuring the "memory" store'
    )
    await assert.fileContains('config/lock.ts', 'memory: stores.memory()')
    await assert.fileNotContains('config/lock.ts', 'stores.redis')
    await assert.fileContains('.env', 'LOCK_STORE=memory')
    await assert.fileContains('start/env.ts', `LOCK_STORE: Env.schema.enum(['memory'] as const)`)
  })

  test('with a terminal: asks for the stores and the middleware', async ({ assert, fs }) => {
    process.stdin.isTTY = true
    const command = await runConfigure(fs, [], (ace) => {
      ace.prompt
        .trap('Select the lock stores you want to use')
        .assertFails([], 'Select at least one store')
        .chooseOptions([0, 1])
      ace.prompt.trap('Register the "lock" named middleware (blocks duplicate requests)?').accept()
    })
    command.assertSucceeded()

    await assert.fileContains('config/lock.ts', [
      'stores.redis()',
      'stores.database(',
      'stores.memory()',
    ])
    await assert.fileContains('.env', 'LOCK_STORE=redis')
    await assert.fileContains(
      'start/kernel.ts',
      `lock: () => import('adonis-lock/lock_middleware')`
    )
    assert.lengthOf(await migrations(fs), 1)
  })

  test('--middleware registers the named middleware once', async ({ assert, fs }) => {
    const { ace } = await createApp(fs)
    await succeed(ace, ['--store=memory', '--middleware'])
    await succeed(ace, ['--store=memory', '--middleware'])

    const kernel = await fs.contents('start/kernel.ts')
    assert.equal(kernel.split(`import('adonis-lock/lock_middleware')`).length - 1, 1)
    assert.include(kernel, `export const middleware = router.named({`)
    assert.include(kernel, `lock: () => import('adonis-lock/lock_middleware')`)
  })

  test('--no-middleware does not ask', async ({ assert, fs }) => {
    process.stdin.isTTY = true
    const command = await runConfigure(fs, ['--store=memory', '--no-middleware'])
    command.assertSucceeded()
    await assert.fileNotContains('start/kernel.ts', 'adonis-lock')
  })

  test('re-running with another store adds it and keeps the app bootable', async ({
    assert,
    fs,
  }) => {
    const { ace } = await createApp(fs)
    await succeed(ace, ['--store=redis'])
    await succeed(ace, ['--store=database'])

    const config = await fs.contents('config/lock.ts')
    for (const store of [
      'redis: stores.redis()',
      'database: stores.database(',
      'memory: stores.memory()',
    ]) {
      assert.equal(config.split(store).length - 1, 1, store)
    }
    assert.isBelow(
      config.indexOf('database:'),
      config.indexOf('memory: stores'),
      'memory stays last'
    )

    const env = await fs.contents('start/env.ts')
    assert.equal(env.split('LOCK_STORE').length - 1, 1)
    assert.include(env, `LOCK_STORE: Env.schema.enum(['redis', 'database', 'memory'] as const)`)
    await assert.fileContains('.env', 'LOCK_STORE=database')
    const dotEnv = await fs.contents('.env')
    assert.equal(count(dotEnv, 'LOCK_STORE='), 1)
    assert.lengthOf(await migrations(fs), 1)

    const rcFile = await fs.contents('adonisrc.ts')
    assert.equal(rcFile.split(`import('adonis-lock/lock_provider')`).length - 1, 1)
    assert.equal(rcFile.split(`import('adonis-lock/commands')`).length - 1, 1)

    /**
     * Again: nothing duplicated, no second migration
     */
    await succeed(ace, ['--store=database'])
    assert.equal(await fs.contents('config/lock.ts'), config)
    assert.lengthOf(await migrations(fs), 1)

    const { source, formatted } = await assertPrettier(fs, 'config/lock.ts')
    assert.equal(source, formatted, 'the edited config/lock.ts is prettier-formatted')
  })

  test('re-running keeps custom stores and edits of config/lock.ts', async ({ assert, fs }) => {
    const { ace } = await createApp(fs)
    await succeed(ace, ['--store=memory'])
    const generated = await fs.contents('config/lock.ts')
    const edited = generated
      .replace(`ttl: '30s'`, `ttl: '1m'`)
      .replace(
        'memory: stores.memory(),',
        `memory: stores.memory(),\n    custom: { driver: { factory: () => new MemoryStore() } },`
      )
      .replace(
        `import env from '#start/env'`,
        `import env from '#start/env'\nimport { MemoryStore } from 'adonis-lock/stores'`
      )
    await fs.create('config/lock.ts', edited)

    await succeed(ace, ['--store=redis'])
    await assert.fileContains('config/lock.ts', [
      `ttl: '1m'`,
      'redis: stores.redis()',
      'custom: { driver: { factory: () => new MemoryStore() } }',
    ])
    await assert.fileContains(
      'start/env.ts',
      `LOCK_STORE: Env.schema.enum(['redis', 'memory', 'custom'] as const)`
    )
  })

  test('re-running without a terminal and without --store keeps everything', async ({
    assert,
    fs,
  }) => {
    const { ace } = await createApp(fs)
    await succeed(ace, ['--store=redis'])
    const config = await fs.contents('config/lock.ts')

    const command = await runIn(ace, [])
    command.assertSucceeded()
    assert.include(
      output(command),
      'No --store flag and no terminal to ask: keeping the stores of config/lock.ts (redis, memory)'
    )
    assert.equal(await fs.contents('config/lock.ts'), config)
    await assert.fileContains('.env', 'LOCK_STORE=redis')
    await assert.fileContains(
      'start/env.ts',
      `LOCK_STORE: Env.schema.enum(['redis', 'memory'] as const)`
    )
  })

  test('--force rewrites config/lock.ts with every store configured so far', async ({
    assert,
    fs,
  }) => {
    const { ace } = await createApp(fs)
    await succeed(ace, ['--store=redis'])
    const generated = await fs.contents('config/lock.ts')
    await fs.create('config/lock.ts', generated.replace(`ttl: '30s'`, `ttl: '1m'`))
    await succeed(ace, ['--store=database', '--force'])
    await assert.fileContains('config/lock.ts', [
      `ttl: '30s'`,
      'stores.redis()',
      'stores.database(',
    ])
  })

  /**
   * start/env.ts and start/kernel.ts are edited by the AdonisJS codemods,
   * formatted as they format them for every package
   */
  test('generated files are prettier-formatted', async ({ assert, fs }) => {
    const { ace } = await createApp(fs)
    await succeed(ace, ['--store=redis,database,memory', '--middleware'])
    const [migration] = await migrations(fs)
    for (const path of ['config/lock.ts', `database/migrations/${migration}`]) {
      const { source, formatted } = await assertPrettier(fs, path)
      assert.equal(source, formatted, path)
    }
  })

  test('a missing @adonisjs/redis: --no-install says what to run', async ({ assert, fs }) => {
    const { ace } = await createApp(fs)
    await fs.createJson('package.json', { name: 'app', type: 'module', dependencies: {} })
    await fs.create(
      'adonisrc.ts',
      `import { defineConfig } from '@adonisjs/core/app'\n\nexport default defineConfig({})\n`
    )

    const command = await runIn(ace, ['--store=redis', '--no-install'])
    command.assertSucceeded()
    const logs = output(command)
    assert.include(logs, 'The redis store needs "@adonisjs/redis", which is not installed')
    assert.include(logs, 'npm i) @adonisjs/redis')
    assert.include(logs, 'Then run: node ace configure @adonisjs/redis')
    await assert.fileContains('config/lock.ts', 'stores.redis()')
  })

  test('without a terminal a missing package is not installed, and said so', async ({
    assert,
    fs,
  }) => {
    const { ace } = await createApp(fs)
    await fs.createJson('package.json', { name: 'app', type: 'module', dependencies: {} })
    await fs.create(
      'adonisrc.ts',
      `import { defineConfig } from '@adonisjs/core/app'\n\nexport default defineConfig({})\n`
    )

    const command = await runIn(ace, ['--store=database'])
    command.assertSucceeded()
    const logs = output(command)
    assert.include(logs, 'The database store needs "@adonisjs/lucid", which is not installed')
    assert.include(
      logs,
      'Then run: node ace configure @adonisjs/lucid --db=<sqlite|postgres|mysql>'
    )
  })

  /**
   * A package manager on the PATH that records what it is asked and
   * exits with `exitCode`, so that installing reaches no registry
   */
  async function fakePackageManager(
    cleanup: (callback: () => Promise<void>) => void,
    exitCode = 0
  ) {
    const dir = await mkdtemp(join(tmpdir(), 'adonis-lock-npm-'))
    const log = join(dir, 'calls.log')
    for (const name of ['npm', 'pnpm', 'yarn', 'bun']) {
      const bin = join(dir, name)
      await writeFile(bin, `#!/bin/sh\necho "${name} $*" >> "${log}"\nexit ${exitCode}\n`)
      await chmod(bin, 0o755)
    }
    const path = process.env.PATH
    process.env.PATH = `${dir}${delimiter}${path}`
    cleanup(async () => {
      process.env.PATH = path
      await rm(dir, { recursive: true, force: true })
    })
    return {
      async calls() {
        const calls = await readFile(log, 'utf8').catch(() => '')
        return calls.trim()
      },
    }
  }

  test('a missing @adonisjs/redis: --install installs it, then configures it', async ({
    assert,
    fs,
    cleanup,
  }) => {
    const { ace } = await createApp(fs)
    await fs.createJson('package.json', { name: 'app', type: 'module', dependencies: {} })
    await fs.create(
      'adonisrc.ts',
      `import { defineConfig } from '@adonisjs/core/app'\n\nexport default defineConfig({})\n`
    )
    const packageManager = await fakePackageManager(cleanup)

    const command = await runIn(ace, ['--store=redis', '--install'])
    command.assertSucceeded()
    assert.match(await packageManager.calls(), /^npm (install|i) .*@adonisjs\/redis/)
    assert.notInclude(await packageManager.calls(), '-D')
    await assert.fileExists('config/redis.ts')
    await assert.fileContains('adonisrc.ts', `() => import('@adonisjs/redis/redis_provider')`)
  })

  test('a missing package whose install fails: the hook exits 1', async ({
    assert,
    fs,
    cleanup,
  }) => {
    const { ace } = await createApp(fs)
    await fs.createJson('package.json', { name: 'app', type: 'module', dependencies: {} })
    await fs.create(
      'adonisrc.ts',
      `import { defineConfig } from '@adonisjs/core/app'\n\nexport default defineConfig({})\n`
    )
    const packageManager = await fakePackageManager(cleanup, 1)

    const command = await runIn(ace, ['--store=redis', '--install'])
    command.assertFailed()
    assert.include(await packageManager.calls(), '@adonisjs/redis')
    await assert.fileContains('config/lock.ts', 'stores.redis()')
  })

  test('an installed but unconfigured @adonisjs/redis: --install configures it', async ({
    assert,
    fs,
  }) => {
    const { ace } = await createApp(fs)
    await fs.create(
      'adonisrc.ts',
      `import { defineConfig } from '@adonisjs/core/app'\n\nexport default defineConfig({})\n`
    )

    const command = await runIn(ace, ['--store=redis', '--install'])
    command.assertSucceeded()
    assert.include(
      output(command),
      'The redis store needs "@adonisjs/redis", which is installed but not configured'
    )
    await assert.fileExists('config/redis.ts')
    await assert.fileContains('adonisrc.ts', [
      `() => import('@adonisjs/redis/redis_provider')`,
      `() => import('adonis-lock/lock_provider')`,
    ])
    await assert.fileContains('.env', ['REDIS_HOST=', 'LOCK_STORE=redis'])
  })
})
