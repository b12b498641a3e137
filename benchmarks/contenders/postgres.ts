import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import {
  FAST_RETRY_MS,
  LOCK_TTL_MS,
  newOwner,
  type Contender,
  type LockSession,
} from './contender.ts'
import { databaseTarget, oursContender, RAW_TABLE, verrouContender } from './database.ts'

const NOW_MS = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000) AS bigint)'

/**
 * One upsert: insert, or take over the row when its holder expired (a
 * released row is kept, expired, for its fencing value), the next token
 * back. The expiry comes from the database clock, like ours.
 */
const RAW_ACQUIRE = `INSERT INTO ${RAW_TABLE} AS held ("key", "owner", "expiration", "fencing")
VALUES ($1, $2, ${NOW_MS} + $3, 1)
ON CONFLICT ("key") DO UPDATE SET
  "owner" = excluded."owner", "expiration" = excluded."expiration", "fencing" = held."fencing" + 1
WHERE held."expiration" <= ${NOW_MS}
RETURNING "fencing"`

/**
 * Frees the row and keeps it, with its fencing value
 */
const RAW_RELEASE = `UPDATE ${RAW_TABLE} SET "owner" = NULL, "expiration" = ${NOW_MS}
WHERE "key" = $1 AND "owner" = $2`

export const rawPostgres: Contender = {
  id: 'raw-postgres',
  label: 'raw pg upsert + UPDATE',
  backend: 'postgres',
  role: 'baseline',
  modes: ['fast'],
  notes:
    '`pg` pool: `INSERT … ON CONFLICT DO UPDATE … WHERE expired RETURNING fencing` (database clock, fencing + 1 on a takeover); release: owner-checked `UPDATE` freeing the row and keeping its fencing value; polls every 10 ms',
  async open(targets): Promise<LockSession> {
    const { poolSize, ...connection } = databaseTarget(targets, 'postgres')
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

export const oursPostgres: Contender = oursContender(
  'postgres',
  'named prepared statements on a connection of the knex pool; default retry: handed the lock by releases of its process, else woken by LISTEN/NOTIFY, 250 ms fallback poll'
)

export const verrouPostgres: Contender = verrouContender(
  'postgres',
  'INSERT, on conflict an UPDATE … WHERE expired; release: SELECT then DELETE'
)

export const postgresContenders = [rawPostgres, oursPostgres, verrouPostgres]
