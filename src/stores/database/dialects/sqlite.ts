import { errorField, toNumber, type Dialect } from './dialect.ts'

/**
 * 'now' is fixed for the statement. julianday() has ms precision and works
 * on every SQLite with RETURNING (3.35+).
 */
const SQLITE_NOW = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"
const SQLITE_HELD = `("expiration" IS NULL OR "expiration" > ${SQLITE_NOW})`

export const sqlite: Dialect = {
  name: 'sqlite',
  statements(table) {
    const now = SQLITE_NOW
    const nowUs = `(${now} * 1000)`
    const held = SQLITE_HELD
    return {
      /**
       * In an upsert, bare column names are the existing row
       */
      acquire: `INSERT INTO ${table} ("key", "owner", "expiration", "fencing")
VALUES (:key, :owner, ${now} + :ttl, ${nowUs})
ON CONFLICT ("key") DO UPDATE SET
  "owner" = excluded."owner",
  "expiration" = excluded."expiration",
  "fencing" = MAX("fencing" + 1, excluded."fencing")
WHERE "expiration" <= ${now}
RETURNING "fencing"`,
      remaining: `SELECT "expiration" - ${now} AS "retry_after" FROM ${table} WHERE "key" = :key`,
      release: `UPDATE ${table} SET "owner" = NULL, "expiration" = ${now}
WHERE "key" = :key AND "owner" = :owner AND ${held}
RETURNING 1`,
      handOver: `UPDATE ${table} SET
  "owner" = :next_owner,
  "expiration" = ${now} + :ttl,
  "fencing" = MAX("fencing" + 1, ${nowUs})
WHERE "key" = :key AND "owner" = :owner AND ${held}
RETURNING "fencing"`,
      forceRelease: `UPDATE ${table} SET "owner" = NULL, "expiration" = ${now}
WHERE "key" = :key AND "owner" IS NOT NULL
RETURNING 1`,
      extend: `UPDATE ${table} SET "expiration" = ${now} + :duration
WHERE "key" = :key AND "owner" = :owner AND ${held}
RETURNING 1`,
      inspect: `SELECT "owner", "expiration" - ${now} AS "expires_in", "fencing" FROM ${table}
WHERE "key" = :key AND "owner" IS NOT NULL AND ${held}`,
      prune: `DELETE FROM ${table}
WHERE "key" IN (
  SELECT "key" FROM ${table} WHERE "expiration" <= ${now} - :grace LIMIT :limit
)
RETURNING 1`,
    }
  },
  semaphore(table, slots) {
    const list = slots.join(', ')
    const mine = `"key" IN (${list}) AND "owner" = :owner AND ${SQLITE_HELD}`
    const now = SQLITE_NOW
    return {
      /**
       * The lock's acquire, with the token continuing from the highest of
       * the slots (this one included): writers take turns, so no other
       * token is handed out between the read and the write
       */
      take: `INSERT INTO ${table} ("key", "owner", "expiration", "fencing")
VALUES (:slot, :owner, ${now} + :ttl, MAX(${now} * 1000,
  (SELECT IFNULL(MAX("fencing"), 0) + 1 FROM ${table} WHERE "key" IN (${list}))))
ON CONFLICT ("key") DO UPDATE SET
  "owner" = excluded."owner",
  "expiration" = excluded."expiration",
  "fencing" = excluded."fencing"
WHERE "expiration" <= ${now}
RETURNING "fencing"`,
      holders: `SELECT "key", "owner", "expiration" - ${SQLITE_NOW} AS "expires_in" FROM ${table}
WHERE "key" IN (${list}) AND "owner" IS NOT NULL AND ${SQLITE_HELD}`,
      release: `UPDATE ${table} SET "owner" = NULL, "expiration" = ${SQLITE_NOW}
WHERE ${mine}
RETURNING 1`,
      forceRelease: `UPDATE ${table} SET "owner" = NULL, "expiration" = ${SQLITE_NOW}
WHERE "key" IN (${list}) AND "owner" IS NOT NULL
RETURNING 1`,
      extend: `UPDATE ${table} SET "expiration" = ${SQLITE_NOW} + :duration
WHERE ${mine}
RETURNING 1`,
    }
  },
  /**
   * Statements with RETURNING or SELECT come back as rows from both
   * better-sqlite3 and sqlite3
   */
  rows: (result) => result as Record<string, unknown>[],
  changes: (result) => (result as unknown[]).length,
  acquired(result) {
    return toNumber(sqlite.rows(result)[0]?.fencing)
  },
  retryAfter: () => undefined,
  isMissingTable: (error) => /no such table/i.test(String(errorField(error, 'message') ?? '')),
  /**
   * One writer at a time: SQLite waits (busy timeout) rather than deadlock
   */
  isDeadlock: () => false,
}
