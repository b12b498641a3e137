import type Configure from '@adonisjs/core/commands/configure'
import { stubsRoot } from './stubs/main.ts'

const KNOWN_STORES = ['redis', 'database', 'memory'] as const
type KnownStore = (typeof KNOWN_STORES)[number]

/**
 * `node ace configure adonis-lock`
 */
export async function configure(command: Configure) {
  const flag = command.parsedFlags.store as string | string[] | undefined
  const requested = (Array.isArray(flag) ? flag : flag ? [flag] : [])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter(Boolean)
  const unknown = requested.filter((store) => !KNOWN_STORES.includes(store as KnownStore))
  if (unknown.length) {
    command.exitCode = 1
    command.logger.logError(
      `Unknown lock store "${unknown.join(', ')}". Supported stores: ${KNOWN_STORES.join(', ')}`
    )
    return
  }
  const chosen = requested.length ? (requested as KnownStore[]) : ['memory' as const]
  const selected = [...new Set<KnownStore>([...chosen, 'memory'])]

  const codemods = await command.createCodemods()
  await codemods.makeUsingStub(stubsRoot, 'config/lock.stub', { stores: selected })
  await codemods.updateRcFile((rcFile) => {
    rcFile.addProvider('adonis-lock/lock_provider')
  })
  if (selected.includes('database')) {
    await codemods.makeUsingStub(stubsRoot, 'make/migration/locks.stub', {
      entity: command.app.generators.createEntity('locks'),
      migration: {
        folder: 'database/migrations',
        fileName: `${Date.now()}_create_locks_table.ts`,
      },
    })
  }
  await codemods.defineEnvVariables({ LOCK_STORE: chosen[0] })
  await codemods.defineEnvValidations({
    leadingComment: 'Variables for configuring the lock package',
    variables: {
      LOCK_STORE: `Env.schema.enum([${selected.map((store) => `'${store}'`).join(', ')}] as const)`,
    },
  })
}
