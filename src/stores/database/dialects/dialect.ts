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
 *
 * A semaphore of `limit` slots is `limit` rows, `<key>#slot0` ... each of
 * them a lock of its own: a row can have one holder only, so the key can
 * never have more than `limit`, however many servers compete. The rows of
 * a key are found by their keys (`IN` the list of slot keys, bound as
 * `:slot0`, `:slot1`, ...), through the primary key index. `:key` is then
 * the key of the semaphore. Its fencing tokens come from one sequence, not
 * one per slot, or a slot taken again could get a token below one another
 * slot handed out: PostgreSQL and MySQL keep it in a row of its own,
 * `<key>#slots` (`:counter`), whose row lock orders concurrent takers;
 * SQLite, whose writers take turns, continues from the slots' highest.
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
  /**
   * Moves the row from `:owner` to `:next_owner` for `:ttl` ms with the
   * next fencing token, in one statement: a release that hands the lock to
   * a waiter of its process
   */
  handOver: string
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

/**
 * The statements of a semaphore of as many slots as `slots` has bindings
 */
export interface SemaphoreStatements {
  /**
   * Takes a free slot in one statement: `fencing` when taken, else
   * `retry_after` (ms until the first holder expires, null: never) and
   * `raced` (a slot looked free but was taken meanwhile). Undefined where
   * the store reads `holders` and then takes a free slot with `take`.
   */
  acquire?: string
  /**
   * Takes the free slot `:slot` with the semaphore's next fencing token
   * (`fencing`). Undefined where the lock's own `acquire` takes it (the
   * slot as `:key`), and then `fence` gives the token.
   */
  take?: string
  /**
   * Moves the semaphore's sequence (`:counter`) on, after a slot was
   * taken: the token comes back as `acquire`'s does
   */
  fence?: string
  /**
   * The unexpired slots: `key`, `owner`, `expires_in` (ms, null: never)
   */
  holders: string
  /**
   * Frees the slot `:owner` holds (PostgreSQL notifies the slot's key,
   * see keys.ts `releasedKey`)
   */
  release: string
  forceRelease: string
  extend: string
}

export interface Dialect {
  name: DialectName
  statements(table: string): DialectStatements
  /**
   * `slots`: the bindings of the slot keys, `:slot0`, `:slot1`, ...
   */
  semaphore(table: string, slots: string[]): SemaphoreStatements
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
  /**
   * The database rolled the statement back to break a deadlock: nothing
   * it did stays, it may be tried again
   */
  isDeadlock(error: unknown): boolean
}

function errorField(error: unknown, field: 'code' | 'errno' | 'message'): unknown {
  return error && typeof error === 'object' ? (error as Record<string, unknown>)[field] : undefined
}

function toNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value)
}

/**
 * statement_timestamp() stays the same for the whole statement, so every
 * comparison and the new expiry agree on one "now"
 */
const PG_NOW = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000) AS bigint)'
const PG_NOW_US = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000000) AS bigint)'
const PG_HELD = `("expiration" IS NULL OR "expiration" > ${PG_NOW})`

/**
 * Selected by the release statements when they freed a row: the release
 * then commits without waiting for its WAL flush, so the NOTIFY goes out
 * at once, and concurrent releases do not queue behind each other's
 * flush (a notifying commit holds a database-wide lock to its end). It
 * stays safe: WAL is flushed in order, so the next acquire of the key,
 * which commits synchronously, makes the release durable before anyone
 * can rely on it. Only a PostgreSQL crash within a moment of the release
 * (wal_writer_delay, 200 ms by default) can lose it, and then the lock is
 * back as the holder left it: held until its ttl, never freed early.
 */
const PG_ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"

const postgres: Dialect = {
  name: 'postgres',
  statements(table) {
    const now = PG_NOW
    const nowUs = PG_NOW_US
    const held = PG_HELD
    return {
      /**
       * Takes over a free row, else inserts one, else reads the holder's
       * expiry: a refused try writes and locks nothing, so it neither
       * flushes WAL nor queues on the holder's row (which an `ON CONFLICT
       * DO UPDATE ... WHERE` would, even when its WHERE refuses). Still
       * atomic: an UPDATE that waited on a concurrent one checks its WHERE
       * again on the new row version, and concurrent inserts collide on
       * the primary key. The holder's expiry is read in the statement's
       * snapshot, which misses a row taken or inserted by a concurrent
       * statement: it then shows as free or not at all, and retry_after
       * is unknown (no row) rather than "retry at once", which would only
       * meet the new holder.
       */
      acquire: `WITH taken AS (
  UPDATE ${table} AS held SET
    "owner" = :owner,
    "expiration" = ${now} + CAST(:ttl AS bigint),
    "fencing" = GREATEST(held."fencing" + 1, ${nowUs})
  WHERE "key" = :key AND "expiration" <= ${now}
  RETURNING "fencing"
),
inserted AS (
  INSERT INTO ${table} ("key", "owner", "expiration", "fencing")
  SELECT :key, :owner, ${now} + CAST(:ttl AS bigint), ${nowUs}
  WHERE NOT EXISTS (SELECT 1 FROM taken)
  ON CONFLICT ("key") DO NOTHING
  RETURNING "fencing"
)
SELECT "fencing", CAST(NULL AS bigint) AS "retry_after" FROM taken
UNION ALL
SELECT "fencing", NULL FROM inserted
UNION ALL
SELECT NULL, "expiration" - ${now} FROM ${table}
WHERE "key" = :key AND ${held}
  AND NOT EXISTS (SELECT 1 FROM taken) AND NOT EXISTS (SELECT 1 FROM inserted)`,
      release: `WITH released AS (
  UPDATE ${table} SET "owner" = NULL, "expiration" = ${now}
  WHERE "key" = :key AND "owner" = :owner AND ${held}
  RETURNING "key"
)
SELECT pg_notify(:channel, "key"), ${PG_ASYNC_COMMIT} FROM released`,
      /**
       * Commits synchronously, unlike a release: it is an acquire, and a
       * lost commit would let the next one take the lock too
       */
      handOver: `UPDATE ${table} AS held SET
  "owner" = :next_owner,
  "expiration" = ${now} + CAST(:ttl AS bigint),
  "fencing" = GREATEST(held."fencing" + 1, ${nowUs})
WHERE "key" = :key AND "owner" = :owner AND ${held}
RETURNING "fencing"`,
      forceRelease: `WITH released AS (
  UPDATE ${table} SET "owner" = NULL, "expiration" = ${now}
  WHERE "key" = :key AND "owner" IS NOT NULL
  RETURNING "key"
)
SELECT pg_notify(:channel, "key"), ${PG_ASYNC_COMMIT} FROM released`,
      extend: `UPDATE ${table} SET "expiration" = ${now} + CAST(:duration AS bigint)
WHERE "key" = :key AND "owner" = :owner AND ${held}
RETURNING 1`,
      inspect: `SELECT "owner", "expiration" - ${now} AS "expires_in", "fencing" FROM ${table}
WHERE "key" = :key AND "owner" IS NOT NULL AND ${held}`,
      /**
       * The outer condition is checked again on the latest row version:
       * a row taken over since the subquery read it is not deleted. Rows
       * locked meanwhile are skipped, not waited for: a semaphore acquire
       * locks two rows (its sequence, then a slot), which a prune locking
       * them the other way round would deadlock.
       */
      prune: `DELETE FROM ${table}
WHERE "key" IN (
  SELECT "key" FROM ${table} WHERE "expiration" <= ${now} - CAST(:grace AS bigint) LIMIT :limit
  FOR UPDATE SKIP LOCKED
) AND "expiration" <= ${now} - CAST(:grace AS bigint)
RETURNING 1`,
    }
  },
  semaphore(table, slots) {
    const list = slots.join(', ')
    const mine = `"key" IN (${list}) AND "owner" = :owner AND ${PG_HELD}`
    return {
      /**
       * Picks a slot free in the statement's snapshot, at random so that
       * concurrent tries seldom pick the same one, and takes it with an
       * upsert whose conflict check runs on the latest row version, so a
       * slot taken meanwhile is never taken twice (the try then reports
       * `raced`, and the store tries again). A try finding no free slot
       * writes nothing, so the upsert's row lock is only paid in races.
       *
       * The token is the semaphore's sequence moved on first (`fenced`):
       * its row lock makes a concurrent taker wait for this statement's
       * commit and continue from its token, so tokens grow in the order
       * they are handed out, whichever slots they go with.
       */
      acquire: `WITH slots ("key") AS (VALUES ${slots.map((slot) => `(CAST(${slot} AS text))`).join(', ')}),
holders AS (
  SELECT "key", "owner", "expiration" FROM ${table}
  WHERE "key" IN (${list}) AND "owner" IS NOT NULL AND ${PG_HELD}
),
pick AS (
  SELECT "key" FROM slots
  WHERE "key" NOT IN (SELECT "key" FROM holders)
    AND NOT EXISTS (SELECT 1 FROM holders WHERE "owner" = :owner)
  ORDER BY random() LIMIT 1
),
fenced AS (
  INSERT INTO ${table} AS counter ("key", "owner", "expiration", "fencing")
  SELECT CAST(:counter AS text), NULL, ${PG_NOW}, ${PG_NOW_US} FROM pick
  ON CONFLICT ("key") DO UPDATE SET
    "expiration" = excluded."expiration",
    "fencing" = GREATEST(counter."fencing" + 1, excluded."fencing")
  RETURNING "fencing"
),
acquired AS (
  INSERT INTO ${table} AS held ("key", "owner", "expiration", "fencing")
  SELECT pick."key", :owner, ${PG_NOW} + CAST(:ttl AS bigint), fenced."fencing" FROM pick, fenced
  ON CONFLICT ("key") DO UPDATE SET
    "owner" = excluded."owner",
    "expiration" = excluded."expiration",
    "fencing" = excluded."fencing"
  WHERE held."expiration" <= ${PG_NOW}
  RETURNING held."fencing"
)
SELECT "fencing", NULL AS "retry_after", NULL AS "raced" FROM acquired
UNION ALL
SELECT NULL, (SELECT min("expiration") FROM holders) - ${PG_NOW}, EXISTS (SELECT 1 FROM pick)
WHERE NOT EXISTS (SELECT 1 FROM acquired)`,
      holders: `SELECT "key", "owner", "expiration" - ${PG_NOW} AS "expires_in" FROM ${table}
WHERE "key" IN (${list}) AND "owner" IS NOT NULL AND ${PG_HELD}`,
      release: `WITH released AS (
  UPDATE ${table} SET "owner" = NULL, "expiration" = ${PG_NOW}
  WHERE ${mine}
  RETURNING "key"
)
SELECT pg_notify(:channel, "key"), ${PG_ASYNC_COMMIT} FROM released`,
      /**
       * One notification per freed slot, each naming its slot: PostgreSQL
       * delivers identical notifications of a transaction once, which
       * would wake a single waiter
       */
      forceRelease: `WITH released AS (
  UPDATE ${table} SET "owner" = NULL, "expiration" = ${PG_NOW}
  WHERE "key" IN (${list}) AND "owner" IS NOT NULL
  RETURNING "key"
)
SELECT pg_notify(:channel, "key"), ${PG_ASYNC_COMMIT} FROM released`,
      extend: `UPDATE ${table} SET "expiration" = ${PG_NOW} + CAST(:duration AS bigint)
WHERE ${mine}
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
  isDeadlock: (error) => errorField(error, 'code') === '40P01',
}

/**
 * UTC_TIMESTAMP is fixed for the statement, and counting from the epoch
 * in UTC avoids any time zone (or DST) conversion
 */
const MYSQL_NOW_US = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))"
const MYSQL_NOW = `(${MYSQL_NOW_US} DIV 1000)`
const MYSQL_HELD = `(\`expiration\` IS NULL OR \`expiration\` > ${MYSQL_NOW})`

/**
 * Fencing values start from the clock in µs, past this since 2001; the ms
 * left to a holder, which a refused acquire reports in the same place,
 * stay far below it (durations are at most 2^31 - 1 ms)
 */
const MYSQL_TOKEN_FLOOR = 1e15

function mysqlInsertId(result: unknown): number {
  return Number((result as [{ insertId: number | string }])[0].insertId)
}

const mysql: Dialect = {
  name: 'mysql',
  statements(table) {
    const nowUs = MYSQL_NOW_US
    const now = MYSQL_NOW
    const free = `\`expiration\` <= ${now}`
    const held = MYSQL_HELD
    return {
      /**
       * ON DUPLICATE KEY UPDATE assigns left to right and later expressions
       * see the new values of earlier columns. `free` reads only
       * `expiration`, assigned last, so all three see the old row.
       *
       * LAST_INSERT_ID(expr) hands a number back in the result
       * (`insertId`) of this same statement: the new fencing value, or
       * for a refused takeover the holder's ms left (0: no expiry), so a
       * failed try needs no second statement (see MYSQL_TOKEN_FLOOR).
       */
      acquire: `INSERT INTO ${table} (\`key\`, \`owner\`, \`expiration\`, \`fencing\`)
VALUES (:key, :owner, ${now} + :ttl, LAST_INSERT_ID(${nowUs}))
ON DUPLICATE KEY UPDATE
  \`fencing\` = IF(${free}, LAST_INSERT_ID(GREATEST(\`fencing\` + 1, ${nowUs})),
    \`fencing\` + 0 * LAST_INSERT_ID(IFNULL(\`expiration\` - ${now}, 0))),
  \`owner\` = IF(${free}, :owner, \`owner\`),
  \`expiration\` = IF(${free}, ${now} + :ttl, \`expiration\`)`,
      release: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${now}
WHERE \`key\` = :key AND \`owner\` = :owner AND ${held}`,
      /**
       * The WHERE reads the row before any assignment; the new token comes
       * back as `insertId`, as in acquire
       */
      handOver: `UPDATE ${table} SET
  \`fencing\` = LAST_INSERT_ID(GREATEST(\`fencing\` + 1, ${nowUs})),
  \`owner\` = :next_owner,
  \`expiration\` = ${now} + :ttl
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
  semaphore(table, slots) {
    const list = slots.join(', ')
    const mine = `\`key\` IN (${list}) AND \`owner\` = :owner AND ${MYSQL_HELD}`
    return {
      /**
       * Runs once the slot is taken, in a statement of its own: the row
       * lock of the sequence orders concurrent takers, and the token
       * comes back as `insertId`, as in acquire. The row stays free (no
       * owner, expired), so it is pruned as a released lock is.
       */
      fence: `INSERT INTO ${table} (\`key\`, \`owner\`, \`expiration\`, \`fencing\`)
VALUES (:counter, NULL, ${MYSQL_NOW}, LAST_INSERT_ID(${MYSQL_NOW_US}))
ON DUPLICATE KEY UPDATE
  \`fencing\` = LAST_INSERT_ID(GREATEST(\`fencing\` + 1, ${MYSQL_NOW_US})),
  \`expiration\` = ${MYSQL_NOW}`,
      holders: `SELECT \`key\`, \`owner\`, \`expiration\` - ${MYSQL_NOW} AS \`expires_in\` FROM ${table}
WHERE \`key\` IN (${list}) AND \`owner\` IS NOT NULL AND ${MYSQL_HELD}`,
      release: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${MYSQL_NOW}
WHERE ${mine}`,
      forceRelease: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${MYSQL_NOW}
WHERE \`key\` IN (${list}) AND \`owner\` IS NOT NULL`,
      extend: `UPDATE ${table} SET \`expiration\` = ${MYSQL_NOW} + :duration
WHERE ${mine}`,
    }
  },
  rows: (result) => (result as [Record<string, unknown>[]])[0],
  changes: (result) => (result as [{ affectedRows: number }])[0].affectedRows,
  acquired(result) {
    const insertId = mysqlInsertId(result)
    return insertId >= MYSQL_TOKEN_FLOOR ? insertId : null
  },
  retryAfter(result) {
    const msLeft = mysqlInsertId(result)
    return msLeft === 0 ? null : msLeft
  },
  isMissingTable: (error) =>
    errorField(error, 'code') === 'ER_NO_SUCH_TABLE' || errorField(error, 'errno') === 1146,
  isDeadlock: (error) =>
    errorField(error, 'code') === 'ER_LOCK_DEADLOCK' || errorField(error, 'errno') === 1213,
}

/**
 * 'now' is fixed for the statement. julianday() has ms precision and works
 * on every SQLite with RETURNING (3.35+).
 */
const SQLITE_NOW = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)"
const SQLITE_HELD = `("expiration" IS NULL OR "expiration" > ${SQLITE_NOW})`

const sqlite: Dialect = {
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
