import { E_LOCK_STORAGE_ERROR } from '../../errors.ts'
import type { AcquireResult } from '../../types.ts'
import type { Dialect, SemaphoreStatements } from './dialects/main.ts'
import { fencingKey, slotKey } from './keys.ts'
import type { Query } from './query.ts'

/**
 * Times an acquire tries again at once when the free slot it picked was
 * taken meanwhile, or the database rolled its statement back to break a
 * deadlock
 */
const SLOT_RACE_RETRIES = 3

/**
 * Semaphore statements are cached for this many distinct limits
 */
const CACHED_LIMITS = 32

/**
 * The slot holder expiring first: ms until it does, null when none expires
 */
function soonestExpiry(holders: Record<string, unknown>[]): number | null {
  let soonest: number | null = null
  for (const { expires_in: expiresIn } of holders) {
    if (expiresIn !== null) soonest = Math.min(soonest ?? Infinity, Number(expiresIn))
  }
  return soonest === null ? null : Math.max(0, soonest)
}

function shuffle<T>(items: T[]): T[] {
  for (let index = items.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1))
    ;[items[index], items[other]] = [items[other], items[index]]
  }
  return items
}

/**
 * A semaphore of `limit` slots is `limit` rows, `<key>#slot0` ..., each a
 * lock of its own, with one sequence of fencing tokens (docs/stores.md)
 */
export class SemaphoreSlots {
  #query: Query
  #dialect: Dialect
  #table: string
  #lockAcquire: string
  #statements = new Map<number, SemaphoreStatements>()

  /**
   * `lockAcquire`: the lock's acquire statement, which takes a slot where
   * the dialect has no `take`
   */
  constructor(query: Query, dialect: Dialect, table: string, lockAcquire: string) {
    this.#query = query
    this.#dialect = dialect
    this.#table = table
    this.#lockAcquire = lockAcquire
  }

  /**
   * The statements of a semaphore of `limit` slots, the stored keys of its
   * slots, and their bindings (`stored`: the semaphore's stored key)
   */
  of(stored: string, limit: number) {
    let sql = this.#statements.get(limit)
    if (!sql) {
      const placeholders = Array.from({ length: limit }, (_, index) => `:slot${index}`)
      sql = this.#dialect.semaphore(this.#table, placeholders)
      if (this.#statements.size < CACHED_LIMITS) this.#statements.set(limit, sql)
    }
    const slotKeys = Array.from({ length: limit }, (_, index) => slotKey(stored, index))
    const bindings: Record<string, unknown> = { key: stored, counter: fencingKey(stored) }
    slotKeys.forEach((slot, index) => (bindings[`slot${index}`] = slot))
    return { sql, slotKeys, bindings }
  }

  /**
   * Takes a free slot. PostgreSQL does it in one statement; MySQL and
   * SQLite read the holders, then take a free slot, and MySQL then moves
   * the semaphore's fencing sequence on.
   */
  take(
    key: string,
    stored: string,
    owner: string,
    limit: number,
    ttl: number | null
  ): Promise<AcquireResult> {
    const { sql, slotKeys, bindings } = this.of(stored, limit)
    const values = { ...bindings, owner, ttl }
    return sql.acquire
      ? this.#takeInOne(key, sql.acquire, values)
      : this.#takeFree(key, sql, slotKeys, values, limit)
  }

  /**
   * The one-statement acquire, tried again when the slot it picked was
   * taken meanwhile
   */
  async #takeInOne(
    key: string,
    statement: string,
    values: Record<string, unknown>
  ): Promise<AcquireResult> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.#unlessDeadlock(`acquire "${key}"`, statement, values)
      const [row] = result === undefined ? [{ raced: true }] : this.#dialect.rows(result)
      if (row.fencing !== null && row.fencing !== undefined) {
        return { acquired: true, fencingToken: Number(row.fencing) }
      }
      if (!row.raced) {
        const retryAfter = row.retry_after === null ? null : Math.max(0, Number(row.retry_after))
        return { acquired: false, retryAfter }
      }
      if (attempt >= SLOT_RACE_RETRIES) return { acquired: false, retryAfter: 0 }
    }
  }

  /**
   * Reads the holders, then takes one of the free slots, in random order
   * so that concurrent tries seldom pick the same one
   */
  async #takeFree(
    key: string,
    sql: SemaphoreStatements,
    slotKeys: string[],
    values: Record<string, unknown>,
    limit: number
  ): Promise<AcquireResult> {
    const action = `acquire "${key}"`
    const holders = this.#dialect.rows(await this.#query(action, sql.holders, values))
    if (holders.length >= limit || holders.some((holder) => holder.owner === values.owner)) {
      return { acquired: false, retryAfter: soonestExpiry(holders) }
    }
    const taken = new Set(holders.map((holder) => holder.key))
    const free = shuffle(slotKeys.filter((slot) => !taken.has(slot)))
    for (const slot of free.slice(0, SLOT_RACE_RETRIES + 1)) {
      const fencingToken = sql.take
        ? await this.#tokenUnlessDeadlock(action, sql.take, { ...values, slot })
        : await this.#tokenUnlessDeadlock(action, this.#lockAcquire, {
            key: slot,
            owner: values.owner,
            ttl: values.ttl,
          })
      if (fencingToken === null) continue
      if (!sql.fence) return { acquired: true, fencingToken }
      return { acquired: true, fencingToken: await this.#fence(action, sql.fence, values) }
    }
    return { acquired: false, retryAfter: 0 }
  }

  /**
   * The semaphore's next fencing token, for a slot just taken
   */
  async #fence(action: string, statement: string, values: Record<string, unknown>) {
    for (let attempt = 0; ; attempt++) {
      const fencingToken = await this.#tokenUnlessDeadlock(action, statement, values)
      if (fencingToken !== null) return fencingToken
      if (attempt >= SLOT_RACE_RETRIES) {
        throw new E_LOCK_STORAGE_ERROR(`${action} could not get a fencing token`)
      }
    }
  }

  /**
   * The result of the statement, or undefined when the database rolled it
   * back to break a deadlock
   */
  async #unlessDeadlock(
    action: string,
    sql: string,
    bindings: Record<string, unknown>
  ): Promise<unknown> {
    try {
      return await this.#query(action, sql, bindings)
    } catch (error) {
      if (this.#dialect.isDeadlock((error as Error).cause)) return undefined
      throw error
    }
  }

  /**
   * The token the statement handed out, or null when it took nothing or
   * was rolled back to break a deadlock
   */
  async #tokenUnlessDeadlock(
    action: string,
    sql: string,
    bindings: Record<string, unknown>
  ): Promise<number | null> {
    const result = await this.#unlessDeadlock(action, sql, bindings)
    return result === undefined ? null : this.#dialect.acquired(result)
  }
}
