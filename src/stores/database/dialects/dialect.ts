/**
 * What a dialect gives the database store: its statements and how to read
 * its results and errors. Design notes: docs/stores.md.
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
   * Deletes up to `:limit` rows expired more than `:grace` ms ago, without
   * waiting for a row another transaction holds
   */
  prune?: string
  /**
   * Where `prune` would lock the rows it scans (MySQL): the keys of up to
   * `:limit` such rows, read without locking, for `pruneRows` to delete
   */
  expired?: string
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
   * With `expired`: deletes the rows `rows` (bindings `:row0`, ...; null
   * stands for none) that are still expired more than `:grace` ms ago
   */
  pruneRows?(table: string, rows: string[]): string
  /**
   * The rows of a result, whatever the driver's shape (pg `{ rows }`,
   * mysql2 `[rows, fields]`, better-sqlite3 an array)
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

export function errorField(error: unknown, field: 'code' | 'errno' | 'message'): unknown {
  return error && typeof error === 'object' ? (error as Record<string, unknown>)[field] : undefined
}

export function toNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value)
}
