import { errorField, toNumber, type Dialect } from './dialect.ts'

/**
 * statement_timestamp() stays the same for the whole statement, so every
 * comparison and the new expiry agree on one "now"
 */
const PG_NOW = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000) AS bigint)'
const PG_NOW_US = 'CAST(floor(extract(epoch FROM statement_timestamp()) * 1000000) AS bigint)'
const PG_HELD = `("expiration" IS NULL OR "expiration" > ${PG_NOW})`

/**
 * Selected by the release statements: they commit without waiting for the
 * WAL flush, so the NOTIFY goes out at once (safe: see docs/stores.md)
 */
const PG_ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"

export const postgres: Dialect = {
  name: 'postgres',
  statements(table) {
    const now = PG_NOW
    const nowUs = PG_NOW_US
    const held = PG_HELD
    return {
      /**
       * Takes over a free row, else inserts one, else reads the holder's
       * expiry: a refused try writes and locks nothing (docs/stores.md)
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
       * Skips locked rows (a semaphore acquire locks two rows), and checks the
       * expiry again on the latest row version
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
       * Takes a random free slot with an upsert that never takes a held one
       * (`raced` when it was taken meanwhile); the token comes from the
       * semaphore's own row, whose lock orders concurrent takers
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
