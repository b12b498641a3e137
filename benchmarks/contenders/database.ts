/**
 * What the contenders of the SQL backends share: knex on the run's
 * database, the tables, and the sessions of ours and of @verrou/core
 */
import knex, { type Knex } from 'knex'
import { knexStore } from '@verrou/core/drivers/knex'
import { DatabaseStore } from '../../src/stores/main.ts'
import {
  type BenchTargets,
  type Contender,
  oursSession,
  type LockSession,
  type RetryMode,
  verrouSession,
} from './contender.ts'

export type DatabaseBackend = 'postgres' | 'mysql' | 'sqlite'

export const DATABASE_BACKENDS: DatabaseBackend[] = ['postgres', 'mysql', 'sqlite']

export const RAW_TABLE = 'bench_raw_locks'
export const OURS_TABLE = 'bench_adonis_locks'
export const VERROU_TABLE = 'bench_verrou_locks'

const MISSING: Record<DatabaseBackend, string> = {
  postgres: 'no PostgreSQL server for this run',
  mysql: 'no MariaDB server for this run',
  sqlite: 'no SQLite database for this run',
}

export function databaseTarget<B extends DatabaseBackend>(
  targets: BenchTargets,
  backend: B
): NonNullable<BenchTargets[B]> {
  const target = targets[backend]
  if (!target) throw new Error(MISSING[backend])
  return target
}

export function connectKnex(backend: DatabaseBackend, targets: BenchTargets): Knex {
  if (backend === 'sqlite') {
    /**
     * better-sqlite3 runs each statement synchronously: a second
     * connection in the same process would only add lock waits
     */
    return knex({
      client: 'better-sqlite3',
      connection: databaseTarget(targets, 'sqlite'),
      useNullAsDefault: true,
      pool: { min: 0, max: 1 },
    })
  }
  const { poolSize, ...connection } = databaseTarget(targets, backend)
  return knex({
    client: backend === 'postgres' ? 'pg' : 'mysql2',
    connection,
    pool: { min: 0, max: poolSize },
  })
}

/**
 * The tables of the run, made once by the parent before any contender
 * opens: the raw one and ours alike, as the configure hook's migration
 * makes ours (the collation only applies on MariaDB). @verrou/core makes
 * its own.
 */
export async function createTables(targets: BenchTargets) {
  for (const backend of DATABASE_BACKENDS) {
    if (!targets[backend]) continue
    const db = connectKnex(backend, targets)
    try {
      for (const table of [RAW_TABLE, OURS_TABLE]) {
        await db.schema.dropTableIfExists(table)
        await db.schema.createTable(table, (columns) => {
          columns.string('key', 255).notNullable().primary().collate('utf8mb4_bin')
          columns.string('owner', 64).nullable()
          columns.bigint('expiration').nullable()
          columns.bigint('fencing').notNullable().defaultTo(0)
        })
      }
      await db.schema.dropTableIfExists(VERROU_TABLE)
    } finally {
      await db.destroy()
    }
  }
}

/**
 * `new DatabaseStore({ connection: knex })` on a knex of its own
 */
export async function openOurs(
  backend: DatabaseBackend,
  targets: BenchTargets,
  mode: RetryMode
): Promise<LockSession> {
  const db = connectKnex(backend, targets)
  try {
    const store = new DatabaseStore({ connection: db, tableName: OURS_TABLE })
    return oursSession(store, mode, () => db.destroy())
  } catch (error) {
    await db.destroy()
    throw error
  }
}

/**
 * `knexStore({ connection: knex })` on a knex of its own
 */
export async function openVerrou(
  backend: DatabaseBackend,
  targets: BenchTargets,
  mode: RetryMode
): Promise<LockSession> {
  const db = connectKnex(backend, targets)
  const store = knexStore({ connection: db, tableName: VERROU_TABLE })
  return verrouSession(store.factory(), mode, () => db.destroy())
}

const LABELS: Record<DatabaseBackend, string> = {
  postgres: 'PostgreSQL',
  mysql: 'MariaDB',
  sqlite: 'SQLite',
}

/**
 * adonis-lock's `DatabaseStore` on the backend; `notes` say how its
 * statements run there
 */
export function oursContender(backend: DatabaseBackend, notes: string): Contender {
  return {
    id: `ours-${backend}`,
    label: `adonis-lock (database, ${LABELS[backend]})`,
    backend,
    role: 'ours',
    modes: ['default', 'fast'],
    notes: `\`new LockFactory(new DatabaseStore({ connection: knex }))\`: ${notes}`,
    open: (targets, mode) => openOurs(backend, targets, mode),
  }
}

/**
 * @verrou/core's knex store on the backend; `notes` say what its
 * statements are there
 */
export function verrouContender(backend: DatabaseBackend, notes: string): Contender {
  return {
    id: `verrou-${backend}`,
    label: `@verrou/core (knex, ${LABELS[backend]})`,
    backend,
    role: 'peer',
    modes: ['default', 'fast'],
    notes: `\`knexStore({ connection: knex })\`: ${notes}; default retry: every 250 ms`,
    open: (targets, mode) => openVerrou(backend, targets, mode),
  }
}
