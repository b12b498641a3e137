import { readdir } from 'node:fs/promises'
import type Configure from '@adonisjs/core/commands/configure'
import { makeUsingStub, type Codemods } from './codemods.ts'

/**
 * database/migrations/<timestamp>_create_locks_table.ts, unless one exists
 */
export async function makeMigration(command: Configure, codemods: Codemods) {
  const folder = command.app.migrationsPath()
  const existing = await readdir(folder).catch(() => [] as string[])
  const previous = existing.find((fileName) => fileName.endsWith('_create_locks_table.ts'))
  if (previous) {
    command.logger
      .action(`create ${command.app.relativePath(folder)}/..._create_locks_table.ts`)
      .skipped(`${previous} exists`)
    return
  }
  await makeUsingStub(codemods, 'make/migration/locks.stub', {
    entity: command.app.generators.createEntity('locks'),
    migration: {
      folder: command.app.relativePath(folder),
      fileName: `${Date.now()}_create_locks_table.ts`,
    },
  })
}
