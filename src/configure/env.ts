import type Configure from '@adonisjs/core/commands/configure'
import { isKind, loadSourceFile, readText, type Codemods, type Project } from './codemods.ts'

/**
 * LOCK_STORE: the first store asked for. Without one, the current value
 * stays when it is still a configured store.
 */
export async function pickDefaultStore(command: Configure, chosen: string[], configured: string[]) {
  if (chosen.length) {
    if (chosen.length > 1) {
      command.logger.info(`LOCK_STORE=${chosen[0]} is the default store; change it in .env`)
    }
    return chosen[0]
  }
  const env = await readText(command.app.makePath('.env'))
  const current = env?.match(/^LOCK_STORE=(.*)$/m)?.[1]?.trim()
  return current && configured.includes(current) ? current : configured[0]
}

/**
 * `LOCK_STORE: Env.schema.enum([...])` listing every configured store,
 * replacing the rule a previous run wrote (the codemod only adds)
 */
export async function defineStoreEnum(
  command: Configure,
  codemods: Codemods,
  project: Project | undefined,
  stores: string[]
) {
  const rule = `Env.schema.enum([${stores.map((name) => `'${name}'`).join(', ')}] as const)`
  const file = project ? loadSourceFile(project, command.app.startPath('env.ts')) : undefined
  const create = file
    ?.getDescendants()
    .find(
      (node) => isKind(node, 'CallExpression') && node.getExpression().getText() === 'Env.create'
    )
  const schema = create && isKind(create, 'CallExpression') ? create.getArguments()[1] : undefined
  const existing =
    schema && isKind(schema, 'ObjectLiteralExpression')
      ? schema.getProperty('LOCK_STORE')
      : undefined
  if (file && existing && isKind(existing, 'PropertyAssignment')) {
    if (existing.getInitializer()?.getText() !== rule) {
      existing.setInitializer(rule)
      await file.save()
      command.logger.action('update start/env.ts file').succeeded()
    }
    return
  }
  await codemods.defineEnvValidations({
    leadingComment: 'Variables for configuring the lock package',
    variables: { LOCK_STORE: rule },
  })
}
