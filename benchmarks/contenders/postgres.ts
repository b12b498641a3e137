import { setTimeout as sleep } from 'node:timers/promises'
import knex, { type Knex } from 'knex'
import pg from 'pg'
import { LockFactory as VerrouLockFactory } from '@verrou/core'
import { knexStore } from '@verrou/core/drivers/knex'
import { DatabaseStore } from '../../src/stores/main.ts'
import {
  FAST_RETRY_MS,
  LOCK_TTL_MS,
  newOwner,
  type BenchTargets,
  type Contender,
  oursSession,
  type LockSession,
  type RetryMode,
} from './contender.ts'

export const RAW_TABLE = 'bench_raw_locks'
export const OURS_TABLE = 'bench_adonis_locks'
export const VERROU_TABLE = 'bench_verrou_locks'

function postgresTarget(targets: BenchTargets) {
  if (!targets.postgres) throw new Error('no PostgreSQL server for this run')
  return targets.postgres
}

function connectKnex(targets: BenchTargets): Knex {
  const { poolSize, ...connection } = postgresTarget(targets)
  return knex({ client: 'pg', connection, pool: { min: 0, max: poolSize } })
}

/**
 * The tables of the run, made once by the parent before any contender
 * opens: the raw one, and ours as the configure hook's migration makes it
 */
export async function createTables(targets: BenchTargets) {
  const db = connectKnex(targets)
  try {
    await db.schema.dropTableIfExists(RAW_TABLE)
    await db.schema.createTable(RAW_TABLE, (table) => {
      table.string('key', 255).notNullable().primary()
      table.string('owner', 64).notNullable()
      table.bigint('expiration').notNullable()
    })
    await db.schema.dropTableIfExists(OURS_TABLE)
    await db.schema.createTable(OURS_TABLE, (table) => {
      table.string('key', 255).notNullable().primary()
      table.string('owner', 64).nullable()
      table.bigint('expiration').nullable()
      table.bigint('fencing').notNullable().defaultTo(0)
    })
    await db.schema.dropTableIfExists(VERROU_TABLE)
  } finally {
    await db.destroy()
  }
}

const NOW_MS = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000) AS bigint)'

/**
 * One upsert: insert, or take over the row when its holder expired. The
 * expiry comes from the database clock, like ours.
 */
const RAW_ACQUIRE = `INSERT INTO ${RAW_TABLE} AS held ("key", "owner", "expiration")
VALUES ($1, $2, ${NOW_MS} + $3)
ON CONFLICT ("key") DO UPDATE SET "owner" = excluded."owner", "expiration" = excluded."expiration"
WHERE held."expiration" <= ${NOW_MS}`

const RAW_RELEASE = `DELETE FROM ${RAW_TABLE} WHERE "key" = $1 AND "owner" = $2`

export const rawPostgres: Contender = {
  id: 'raw-postgres',
  label: 'raw pg upsert + DELETE',
  backend: 'postgres',
  role: 'baseline',
  modes: ['fast'],
  notes:
    '`pg` pool: `INSERT … ON CONFLICT DO UPDATE … WHERE expired` (database clock); release: owner-checked `DELETE`; polls every 10 ms',
  async open(targets): Promise<LockSession> {
    const { poolSize, ...connection } = postgresTarget(targets)
    const pool = new pg.Pool({ ...connection, max: poolSize })
    return {
      async acquire(key) {
        const owner = newOwner()
        while (true) {
          const acquired = await pool.query(RAW_ACQUIRE, [key, owner, LOCK_TTL_MS])
          if (acquired.rowCount === 1) break
          await sleep(FAST_RETRY_MS)
        }
        return async () => {
          const released = await pool.query(RAW_RELEASE, [key, owner])
          if (released.rowCount !== 1) throw new Error(`${key} was not held`)
        }
      },
      close: () => pool.end(),
    }
  },
}

export const oursPostgres: Contender = {
  id: 'ours-postgres',
  label: 'adonis-lock (database, PostgreSQL)',
  backend: 'postgres',
  role: 'ours',
  modes: ['default', 'fast'],
  notes:
    '`new LockFactory(new DatabaseStore({ connection: knex }))`: named prepared statements on a connection of the knex pool; default retry: handed the lock by releases of its process, else woken by LISTEN/NOTIFY, 250 ms fallback poll',
  async open(targets, mode: RetryMode): Promise<LockSession> {
    const db = connectKnex(targets)
    try {
      const store = new DatabaseStore({ connection: db, tableName: OURS_TABLE })
      return oursSession(store, mode, () => db.destroy())
    } catch (error) {
      await db.destroy()
      throw error
    }
  },
}

export const verrouPostgres: Contender = {
  id: 'verrou-postgres',
  label: '@verrou/core (knex, PostgreSQL)',
  backend: 'postgres',
  role: 'peer',
  modes: ['default', 'fast'],
  notes:
    '`knexStore({ connection: knex })`: INSERT, on conflict an UPDATE … WHERE expired; release: SELECT then DELETE; default retry: every 250 ms',
  async open(targets, mode: RetryMode): Promise<LockSession> {
    const db = connectKnex(targets)
    const factory = new VerrouLockFactory(
      knexStore({ connection: db, tableName: VERROU_TABLE }).factory(),
      { retry: mode === 'fast' ? { delay: FAST_RETRY_MS } : undefined }
    )
    return {
      async acquire(key) {
        const lock = factory.createLock(key, LOCK_TTL_MS)
        if (!(await lock.acquire())) throw new Error('verrou gave up')
        return () => lock.release()
      },
      close: () => db.destroy(),
    }
  },
}

export const postgresContenders = [rawPostgres, oursPostgres, verrouPostgres]
