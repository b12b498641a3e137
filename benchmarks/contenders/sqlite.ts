import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import {
  FAST_RETRY_MS,
  LOCK_TTL_MS,
  newOwner,
  type Contender,
  type LockSession,
} from './contender.ts'
import { databaseTarget, oursContender, RAW_TABLE, verrouContender } from './database.ts'

/**
 * 'now' is fixed for the statement; julianday() has ms precision
 */
const NOW_MS = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"

/**
 * One upsert: insert, or take over the row when its holder expired (a
 * released row is kept, expired, for its fencing value), the next token
 * back. The expiry comes from the database clock, like ours.
 */
const RAW_ACQUIRE = `INSERT INTO ${RAW_TABLE} ("key", "owner", "expiration", "fencing")
VALUES (?, ?, ${NOW_MS} + ?, 1)
ON CONFLICT ("key") DO UPDATE SET
  "owner" = excluded."owner", "expiration" = excluded."expiration", "fencing" = "fencing" + 1
WHERE "expiration" <= ${NOW_MS}
RETURNING "fencing"`

/**
 * Frees the row and keeps it, with its fencing value
 */
const RAW_RELEASE = `UPDATE ${RAW_TABLE} SET "owner" = NULL, "expiration" = ${NOW_MS}
WHERE "key" = ? AND "owner" = ?`

export const rawSqlite: Contender = {
  id: 'raw-sqlite',
  label: 'raw better-sqlite3 upsert + UPDATE',
  backend: 'sqlite',
  role: 'baseline',
  modes: ['fast'],
  notes:
    '`better-sqlite3` prepared statements: `INSERT … ON CONFLICT DO UPDATE … WHERE expired RETURNING fencing` (database clock, fencing + 1 on a takeover); release: owner-checked `UPDATE` freeing the row and keeping its fencing value; polls every 10 ms',
  async open(targets): Promise<LockSession> {
    const db = new Database(databaseTarget(targets, 'sqlite').filename)
    const acquire = db.prepare(RAW_ACQUIRE)
    const release = db.prepare(RAW_RELEASE)
    return {
      async acquire(key) {
        const owner = newOwner()
        while (acquire.get(key, owner, LOCK_TTL_MS) === undefined) await sleep(FAST_RETRY_MS)
        return async () => {
          if (release.run(key, owner).changes !== 1) throw new Error(`${key} was not held`)
        }
      },
      async close() {
        db.close()
      },
    }
  },
}

export const oursSqlite: Contender = oursContender(
  'sqlite',
  "better-sqlite3 statements kept per connection, on knex's one connection: one `INSERT … ON CONFLICT DO UPDATE … RETURNING`, a refused one followed by a `SELECT` of the time left; default retry: handed the lock by releases of its process, else polls every 250 ms (or when the holder expires)"
)

export const verrouSqlite: Contender = verrouContender(
  'sqlite',
  'INSERT, on conflict an UPDATE … WHERE expired; release: SELECT then DELETE'
)

export const sqliteContenders = [rawSqlite, oursSqlite, verrouSqlite]
