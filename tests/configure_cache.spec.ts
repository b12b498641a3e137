import { fileURLToPath } from 'node:url'
import { ListLoader } from '@adonisjs/core/ace'
import Configure from '@adonisjs/core/commands/configure'
import { IgnitorFactory } from '@adonisjs/core/factories/core/ignitor'
import type { FileSystem } from '@japa/file-system'
import { test } from '@japa/runner'

/**
 * A directory of this process: other test runs may use tmp/fs meanwhile
 */
const BASE_URL = new URL(`../tmp/configure_cache_${process.pid}/`, import.meta.url)

const RC_FILE = (providers: string[]) => `import { defineConfig } from '@adonisjs/core/app'

export default defineConfig({
  commands: [() => import('@adonisjs/core/commands')],
  providers: [
${providers.map((provider) => `    () => import('${provider}'),`).join('\n')}
  ],
})
`

/**
 * A fresh app with the memory lock store, and @adonisjs/cache installed
 * and configured or not
 */
async function configureIn(
  fs: FileSystem,
  argv: string[],
  cache: 'missing' | 'installed' | 'configured'
) {
  await fs.create('.env', 'NODE_ENV=development\n')
  await fs.createJson('tsconfig.json', {})
  await fs.createJson('package.json', {
    name: 'app',
    type: 'module',
    dependencies: {
      '@adonisjs/core': '^7.0.0',
      ...(cache === 'missing' ? {} : { '@adonisjs/cache': '^2.0.0' }),
    },
  })
  await fs.create(
    'start/env.ts',
    `import { Env } from '@adonisjs/core/env'\n\nexport default await Env.create(new URL('../', import.meta.url), {})\n`
  )
  await fs.create(
    'adonisrc.ts',
    RC_FILE([
      '@adonisjs/core/providers/app_provider',
      ...(cache === 'configured' ? ['@adonisjs/cache/cache_provider'] : []),
    ])
  )
  const ignitor = new IgnitorFactory()
    .withCoreProviders()
    .withCoreConfig()
    .create(fs.baseUrl, {
      importer: (filePath) =>
        filePath.startsWith('.') ? import(new URL(filePath, fs.baseUrl).href) : import(filePath),
    })
  const app = ignitor.createApp('console')
  await app.init()
  await app.boot()
  const ace = await app.container.make('ace')
  ace.ui.switchMode('raw')
  ace.addLoader(new ListLoader([Configure]))
  const command = await ace.create(Configure, ['../../index.ts', '--store=memory', ...argv])
  await command.exec()
  command.assertSucceeded()
  return command.logger
    .getLogs()
    .map((log) => log.message)
    .join('\n')
}

test.group('Configure: @adonisjs/cache for Idempotency-Key replay', (group) => {
  let isTTY: boolean | undefined
  group.each.setup(({ context }) => {
    context.fs.baseUrl = BASE_URL
    context.fs.basePath = fileURLToPath(BASE_URL)
    isTTY = process.stdin.isTTY
    process.stdin.isTTY = false
    return () => {
      process.stdin.isTTY = isTTY as boolean
    }
  })
  group.each.timeout(60_000)

  test('without --cache: says how to set it up, installs nothing', async ({ assert, fs }) => {
    const logs = await configureIn(fs, [], 'missing')
    assert.include(logs, 're-run with --cache to set it up')
    assert.notInclude(logs, 'npm i) @adonisjs/cache')
  })

  test('--cache --no-install with the package missing: lists it and what to run', async ({
    assert,
    fs,
  }) => {
    const logs = await configureIn(fs, ['--cache', '--no-install'], 'missing')
    assert.include(logs, 'npm i) @adonisjs/cache')
    assert.include(logs, 'Then run: node ace configure @adonisjs/cache')
  })

  test('--cache with the package installed, no terminal: what to run', async ({ assert, fs }) => {
    const logs = await configureIn(fs, ['--cache'], 'installed')
    assert.include(logs, 'Now run: node ace configure @adonisjs/cache')
  })

  test('--cache with @adonisjs/cache configured: nothing to do', async ({ assert, fs }) => {
    const logs = await configureIn(fs, ['--cache'], 'configured')
    assert.include(logs, '@adonisjs/cache is configured')
    assert.notInclude(logs, 'node ace configure @adonisjs/cache')
  })
})
