import type Configure from '@adonisjs/core/commands/configure'
import type { Codemods } from './codemods.ts'

const MIDDLEWARE_PROMPT = 'Register the "lock" named middleware (blocks duplicate requests)?'

/**
 * The named middleware `lock` in start/kernel.ts, when asked for
 */
export async function registerMiddleware(
  command: Configure,
  codemods: Codemods,
  flag: boolean | undefined,
  interactive: boolean
) {
  const register =
    flag ??
    (interactive ? await command.prompt.confirm(MIDDLEWARE_PROMPT, { default: false }) : false)
  if (!register) {
    if (flag === undefined && !interactive) {
      command.logger.info(
        'Skipped the "lock" named middleware: re-run with --middleware to register it in start/kernel.ts'
      )
    }
    return
  }
  await codemods.registerMiddleware('named', [
    { name: 'lock', path: 'adonis-lock/lock_middleware' },
  ])
}
