import type Configure from '@adonisjs/core/commands/configure'
import { ensureBackends } from './src/configure/backends.ts'
import { configureReplayCache } from './src/configure/cache.ts'
import { loadSourceFile, readText } from './src/configure/codemods.ts'
import { readConfiguredStores, writeConfig } from './src/configure/config_file.ts'
import { defineStoreEnum, pickDefaultStore } from './src/configure/env.ts'
import { parseBooleanFlag, parseStoresFlag } from './src/configure/flags.ts'
import { registerMiddleware } from './src/configure/middleware.ts'
import { makeMigration } from './src/configure/migration.ts'
import { DEFAULT_STORE, KNOWN_STORES, STORES, type KnownStore } from './src/configure/stores.ts'

const STORES_PROMPT = 'Select the lock stores you want to use'

/**
 * `node ace add adonis-lock` / `node ace configure adonis-lock`
 *
 * Flags: `--store=redis,database,memory` (repeatable), `--install` /
 * `--no-install`, `--middleware` / `--no-middleware`, `--cache` /
 * `--no-cache` (@adonisjs/cache for the middleware's replay). What a flag
 * does not say is asked when there is a terminal, else defaulted out loud.
 */
export async function configure(command: Configure) {
  const logger = command.logger
  const interactive = Boolean(process.stdin.isTTY)

  const requested = parseStoresFlag(command.parsedFlags.store)
  if (typeof requested === 'string') {
    command.exitCode = 1
    logger.error(requested)
    return
  }
  const installFlag = parseBooleanFlag(command.parsedFlags.install)
  const middlewareFlag = parseBooleanFlag(command.parsedFlags.middleware)

  const codemods = await command.createCodemods()
  const project = await codemods.getTsMorphProject()
  const configPath = command.app.configPath('lock.ts')
  const configExists = (await readText(configPath)) !== undefined
  const configFile = configExists && project ? loadSourceFile(project, configPath) : undefined
  if (configExists && !configFile && !codemods.overwriteExisting) {
    command.exitCode = 1
    logger.error(
      'Cannot read config/lock.ts without "@adonisjs/assembler": install it, or re-run with --force to overwrite the file'
    )
    return
  }
  const existingStores = configFile ? readConfiguredStores(configFile) : undefined

  /**
   * The stores asked for now, first one = the default store
   */
  let chosen: KnownStore[]
  if (requested) {
    chosen = requested
  } else if (interactive) {
    chosen = await command.prompt.multiple(
      STORES_PROMPT,
      KNOWN_STORES.map((name) => ({ name, message: STORES[name].label })),
      { validate: (value) => (value.length ? true : 'Select at least one store') }
    )
  } else if (existingStores) {
    chosen = []
    logger.info(
      `No --store flag and no terminal to ask: keeping the stores of config/lock.ts (${existingStores.join(', ')})`
    )
  } else {
    chosen = [DEFAULT_STORE]
    logger.warning(
      `No --store flag and no terminal to ask: configuring the "${DEFAULT_STORE}" store. Its locks are not shared between processes; for that, run "node ace configure adonis-lock --store=redis" (or --store=database)`
    )
  }

  const configured = await writeConfig(command, codemods, configFile, existingStores, chosen)
  if (!configured) return

  await codemods.updateRcFile((rcFile) => {
    rcFile.addProvider('adonis-lock/lock_provider')
    rcFile.addCommand('adonis-lock/commands')
  })

  if (configured.includes('database')) await makeMigration(command, codemods)

  const defaultStore = await pickDefaultStore(command, chosen, configured)
  await codemods.defineEnvVariables({ LOCK_STORE: defaultStore })
  await defineStoreEnum(command, codemods, project, configured)

  await registerMiddleware(command, codemods, middlewareFlag, interactive)
  await ensureBackends(command, codemods, configured, installFlag, interactive)
  const cache = parseBooleanFlag(command.parsedFlags.cache)
  await configureReplayCache(command, codemods, { cache, install: installFlag, interactive })
}
