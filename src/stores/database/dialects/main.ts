import type { Dialect } from './dialect.ts'
import { mysql } from './mysql.ts'
import { postgres } from './postgres.ts'
import { sqlite } from './sqlite.ts'

export type { Dialect, DialectName, DialectStatements, SemaphoreStatements } from './dialect.ts'

/**
 * knex's dialect names (`client.dialect`) of the supported databases
 */
const DIALECTS: Record<string, Dialect> = {
  postgresql: postgres,
  mysql: mysql,
  sqlite3: sqlite,
}

export const SUPPORTED_DIALECTS =
  'PostgreSQL (pg), MySQL/MariaDB (mysql2, mysql), SQLite (better-sqlite3, sqlite3)'

/**
 * The dialect of a knex client, or undefined when not supported
 */
export function dialectOf(knexDialect: string | undefined): Dialect | undefined {
  return knexDialect && Object.hasOwn(DIALECTS, knexDialect) ? DIALECTS[knexDialect] : undefined
}
