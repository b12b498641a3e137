import type { Knex } from 'knex'
import { describe } from '../../describe.ts'
import { E_INVALID_LOCK_CONFIG, E_LOCK_STORAGE_ERROR } from '../../errors.ts'
import type { Dialect } from './dialects/main.ts'
import { Statements } from './statements.ts'

/**
 * Runs a statement, wrapping a failure in E_LOCK_STORAGE_ERROR naming `action`
 */
export type Query = (
  action: string,
  sql: string,
  bindings: Record<string, unknown>
) => Promise<unknown>

/**
 * Runs the store's statements: prepared (see Statements), or through
 * `knex.raw` with `preparedStatements: false` on MySQL and SQLite and with
 * the `mysql` and `sqlite3` drivers. Failures become E_LOCK_STORAGE_ERROR.
 */
export function queryRunner(
  knex: Knex,
  dialect: Dialect,
  tableName: string,
  preparedStatements: unknown
): Query {
  if (preparedStatements !== undefined && typeof preparedStatements !== 'boolean') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid "preparedStatements" ${describe(preparedStatements)} of the database lock store: expected a boolean`
    )
  }
  const prepared = preparedStatements ?? true
  let run: (sql: string, bindings: Record<string, unknown>) => Promise<unknown>
  if (Statements.supports(knex, dialect.name) && (prepared || dialect.name === 'postgres')) {
    const statements = new Statements(knex, dialect.name, prepared)
    run = (sql, bindings) => statements.run(sql, bindings)
  } else {
    run = (sql, bindings) => knex.raw(sql, bindings as Knex.ValueDict)
  }
  return async (action, sql, bindings) => {
    try {
      return await run(sql, bindings)
    } catch (error) {
      throw storageError(error, action, dialect, tableName)
    }
  }
}

function storageError(error: unknown, action: string, dialect: Dialect, tableName: string) {
  if (dialect.isMissingTable(error)) {
    return new E_LOCK_STORAGE_ERROR(
      `the table "${tableName}" does not exist. Create it with "node ace configure adonis-lock --store=database" (which writes its migration), then "node ace migration:run"`,
      { cause: error }
    )
  }
  if (dialect.name === 'sqlite' && /near "RETURNING": syntax error/i.test(String(error))) {
    return new E_LOCK_STORAGE_ERROR(`${action} needs SQLite 3.35 or newer (RETURNING)`, {
      cause: error,
    })
  }
  return E_LOCK_STORAGE_ERROR.wrap(error, action)
}
