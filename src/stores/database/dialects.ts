/**
 * The SQL of the database store, one set per dialect. Everything else
 * (binding values, reading results, errors, waiting) is shared by the
 * store; a dialect only says how its database words each statement.
 *
 * The table is `(key pk, owner, expiration, fencing)`. `expiration` is in
 * ms since the epoch by the database clock (null: never expires), so app
 * servers with skewed clocks agree on who holds a lock and until when.
 *
 * A row is free when `expiration <= now`. Releasing sets `owner` to null
 * and `expiration` to now instead of deleting the row, which keeps its
 * fencing value: that is why "free" needs no test on `owner`, and why
 * MySQL can evaluate the same condition in each of its ordered
 * assignments (see there).
 *
 * Fencing tokens are `GREATEST(previous + 1, now in µs)`: strictly
 * increasing while the row lives, and still increasing after a prune
 * deleted it, since rows are pruned only a while (PRUNE_GRACE) after
 * they expired.
 *
 * Named bindings: `:key`, `:owner`, `:ttl` and `:duration` (ms or null),
 * `:channel`, `:grace` (ms), `:limit`.
 */

export type DialectName = 'postgres' | 'mysql' | 'sqlite'

export interface DialectStatements {
  /**
   * Inserts the row, or takes over a free one, in one atomic statement
   */
  acquire: string
  /**
   * Ms left to the holder (`retry_after`), for dialects whose acquire
   * cannot report it in the same statement
   */
  remaining?: string
  /**
   * Frees the row when `:owner` holds it unexpired (PostgreSQL also
   * notifies the release channel)
   */
  release: string
  forceRelease: string
  extend: string
  /**
   * The holder of an unexpired lock: `owner`, `expires_in` (ms, null:
   * never), `fencing`
   */
  inspect: string
  /**
   * Deletes up to `:limit` rows expired more than `:grace` ms ago
   */
  prune: string
}

export interface Dialect {
  name: DialectName
  statements(table: string): DialectStatements
  /**
   * Rows of a raw result
   */
  rows(result: unknown): Record<string, unknown>[]
  /**
   * Rows a write changed. PostgreSQL and SQLite writes return one row per
   * changed row (RETURNING), MySQL reports affected rows.
   */
  changes(result: unknown): number
  /**
   * The fencing token when the raw result of `acquire` says the lock was
   * taken, else null
   */
  acquired(result: unknown): number | null
  /**
   * The holder's remaining ms reported by a failed `acquire`; undefined
   * when the statement cannot tell (then `remaining` is asked)
   */
  retryAfter(result: unknown): number | null | undefined
  isMissingTable(error: unknown): boolean
}

function errorField(error: unknown, field: 'code' | 'errno' | 'message'): unknown {
  return error && typeof error === 'object' ? (error as Record<string, unknown>)[field] : undefined
}

function toNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value)
}

const postgres: Dialect = {
  name: 'postgres',
  statements(table) {
    /**
     * statement_timestamp() stays the same for the whole statement, so
     * every comparison and the new expiry agree on one "now"
     */
    const now = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000) AS bigint)'
    const nowUs = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000000) AS bigint)'
    const held = `("expiration" IS NULL OR "expiration" > ${now})`
    return {
      /**
       * RETURNING yields no row when the holder is still there; the UNION
       * then reads its expiry, so a failed try costs no second round trip.
       * That read sees the statement's snapshot: a row inserted by a
       * concurrent statement may be missing (retry_after unknown).
       */
      acquire: `WITH acquired AS (
  INSERT INTO ${table} AS held ("key", "owner", "expiration", "fencing")
  VALUES (:key, :owner, ${now} + CAST(:ttl AS bigint), ${nowUs})
  ON CONFLICT ("key") DO UPDATE SET
    "owner" = excluded."owner",
    "expiration" = excluded."expiration",
    "fencing" = GREATEST(held."fencing" + 1, excluded."fencing")
  WHERE held."expiration" <= ${now}
  RETURNING held."fencing"
)
SELECT "fencing", NULL AS "retry_after" FROM acquired
UNION ALL
SELECT NULL, "expiration" - ${now} FROM ${table}
WHERE "key" = :key AND NOT EXISTS (SELECT 1 FROM acquired)`,
      release: `WITH released AS (
  UPDATE ${table} SET "owner" = NULL, "expiration" = ${now}
  WHERE "key" = :key AND "owner" = :owner AND ${held}
  RETURNING "key"
)
SELECT pg_notify(:channel, "key") FROM released`,
      forceRelease: `WITH released AS (
  UPDATE ${table} SET "owner" = NULL, "expiration" = ${now}
  WHERE "key" = :key AND "owner" IS NOT NULL
  RETURNING "key"
)
SELECT pg_notify(:channel, "key") FROM released`,
      extend: `UPDATE ${table} SET "expiration" = ${now} + CAST(:duration AS bigint)
WHERE "key" = :key AND "owner" = :owner AND ${held}
RETURNING 1`,
      inspect: `SELECT "owner", "expiration" - ${now} AS "expires_in", "fencing" FROM ${table}
WHERE "key" = :key AND "owner" IS NOT NULL AND ${held}`,
      /**
       * The outer condition is checked again on the latest row version:
       * a row taken over since the subquery read it is not deleted
       */
      prune: `DELETE FROM ${table}
WHERE "key" IN (
  SELECT "key" FROM ${table} WHERE "expiration" <= ${now} - CAST(:grace AS bigint) LIMIT :limit
) AND "expiration" <= ${now} - CAST(:grace AS bigint)
RETURNING 1`,
    }
  },
  rows: (result) => (result as { rows: Record<string, unknown>[] }).rows,
  changes: (result) => (result as { rows: unknown[] }).rows.length,
  acquired(result) {
    return toNumber(postgres.rows(result)[0]?.fencing)
  },
  retryAfter(result) {
    const row = postgres.rows(result)[0]
    return row ? toNumber(row.retry_after) : undefined
  },
  isMissingTable: (error) => errorField(error, 'code') === '42P01',
}

const mysql: Dialect = {
  name: 'mysql',
  statements(table) {
    /**
     * UTC_TIMESTAMP is fixed for the statement, and counting from the
     * epoch in UTC avoids any time zone (or DST) conversion
     */
    const nowUs = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))"
    const now = `(${nowUs} DIV 1000)`
    const free = `\`expiration\` <= ${now}`
    const held = `(\`expiration\` IS NULL OR \`expiration\` > ${now})`
    return {
      /**
       * ON DUPLICATE KEY UPDATE assigns left to right and later expressions
       * see the new values of earlier columns. `free` reads only
       * `expiration`, assigned last, so all three see the old row.
       *
       * LAST_INSERT_ID(expr) hands the new fencing value back in the
       * result (`insertId`) of this same statement; a refused takeover
       * resets it to 0.
       */
      acquire: `INSERT INTO ${table} (\`key\`, \`owner\`, \`expiration\`, \`fencing\`)
VALUES (:key, :owner, ${now} + :ttl, LAST_INSERT_ID(${nowUs}))
ON DUPLICATE KEY UPDATE
  \`fencing\` = IF(${free}, LAST_INSERT_ID(GREATEST(\`fencing\` + 1, ${nowUs})), \`fencing\` + LAST_INSERT_ID(0)),
  \`owner\` = IF(${free}, :owner, \`owner\`),
  \`expiration\` = IF(${free}, ${now} + :ttl, \`expiration\`)`,
      remaining: `SELECT \`expiration\` - ${now} AS \`retry_after\` FROM ${table} WHERE \`key\` = :key`,
      release: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${now}
WHERE \`key\` = :key AND \`owner\` = :owner AND ${held}`,
      forceRelease: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${now}
WHERE \`key\` = :key AND \`owner\` IS NOT NULL`,
      /**
       * Counts matched rows with the drivers' default FOUND_ROWS flag, so
       * an extension to the same expiry still counts
       */
      extend: `UPDATE ${table} SET \`expiration\` = ${now} + :duration
WHERE \`key\` = :key AND \`owner\` = :owner AND ${held}`,
      inspect: `SELECT \`owner\`, \`expiration\` - ${now} AS \`expires_in\`, \`fencing\` FROM ${table}
WHERE \`key\` = :key AND \`owner\` IS NOT NULL AND ${held}`,
      /**
       * A locking read: a row taken over meanwhile no longer matches
       */
      prune: `DELETE FROM ${table} WHERE \`expiration\` <= ${now} - :grace LIMIT :limit`,
    }
  },
  rows: (result) => (result as [Record<string, unknown>[]])[0],
  changes: (result) => (result as [{ affectedRows: number }])[0].affectedRows,
  acquired(result) {
    const insertId = Number((result as [{ insertId: number | string }])[0].insertId)
    return insertId > 0 ? insertId : null
  },
  retryAfter: () => undefined,
  isMissingTable: (error) =>
    errorField(error, 'code') === 'ER_NO_SUCH_TABLE' || errorField(error, 'errno') === 1146,
}

const sqlite: Dialect = {
  name: 'sqlite',
  statements(table) {
    /**
     * 'now' is fixed for the statement. julianday() has ms precision and
     * works on every SQLite with RETURNING (3.35+).
     */
    const now = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"
    const nowUs = `(${now} * 1000)`
    const held = `("expiration" IS NULL OR "expiration" > ${now})`
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
}

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
