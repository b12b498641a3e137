import type Configure from '@adonisjs/core/commands/configure'
import { readText, type Codemods } from './codemods.ts'

const CACHE_PACKAGE = '@adonisjs/cache'
const CACHE_PROVIDER = '@adonisjs/cache/cache_provider'

/**
 * The lock middleware's `replay` option keeps responses in
 * @adonisjs/cache: with `--cache`, install it and
 * run its configure hook, as the redis and database stores do for
 * @adonisjs/redis and @adonisjs/lucid. Its hook asks for a driver: without
 * a terminal, say what to run instead.
 */
export async function configureReplayCache(
  command: Configure,
  codemods: Codemods,
  flags: { cache?: boolean; install?: boolean; interactive: boolean }
) {
  const { logger } = command
  if (!flags.cache) {
    if (flags.cache === undefined) {
      logger.info(
        `Idempotency-Key replay stores responses with ${CACHE_PACKAGE}: re-run with --cache to set it up`
      )
    }
    return
  }

  const rcFile = await readText(command.app.makePath('adonisrc.ts'))
  if (rcFile?.includes(CACHE_PROVIDER)) {
    logger.info(
      `${CACHE_PACKAGE} is configured: use middleware.lock({ idempotency, replay: true })`
    )
    return
  }
  const manifest = JSON.parse((await readText(command.app.makePath('package.json'))) ?? '{}')
  const installed = Object.hasOwn(
    { ...manifest.dependencies, ...manifest.devDependencies },
    CACHE_PACKAGE
  )
  const install =
    flags.install ??
    (flags.interactive && !installed
      ? await command.prompt.confirm(`Install "${CACHE_PACKAGE}" now?`)
      : false)

  if (!installed) {
    if (!install) {
      await codemods.listPackagesToInstall([{ name: CACHE_PACKAGE, isDevDependency: false }])
      logger.info(`Then run: node ace configure ${CACHE_PACKAGE}`)
      return
    }
    if (!(await codemods.installPackages([{ name: CACHE_PACKAGE, isDevDependency: false }]))) {
      command.exitCode = 1
      return
    }
  }
  if (!flags.interactive) {
    logger.info(
      `Now run: node ace configure ${CACHE_PACKAGE} (pick the redis or database driver, shared by every server)`
    )
    return
  }
  const ace = await command.app.container.make('ace')
  const result = await ace.exec('configure', [CACHE_PACKAGE])
  if (result.exitCode) command.exitCode = result.exitCode
}
