import { createHash } from 'node:crypto'
import type { Knex } from 'knex'
import debug from '../debug.ts'
import { describe } from '../describe.ts'
import { parseRequiredDuration } from '../duration.ts'
import { E_INVALID_LOCK_CONFIG, E_LOCK_NOT_OWNED, E_LOCK_STORAGE_ERROR } from '../errors.ts'
import type {
  AcquireResult,
  Duration,
  Handoff,
  LockClaim,
  LockInspection,
  LockStore,
  SemaphoreStore,
} from '../types.ts'
import { sleep } from '../wait.ts'
import {
  dialectOf,
  SUPPORTED_DIALECTS,
  type Dialect,
  type DialectStatements,
  type SemaphoreStatements,
} from './database/dialects.ts'
import { fencingKey, slotKey, storedKey } from './database/keys.ts'
import { PreparedStatements } from './database/prepared_statements.ts'
import { ReleaseListener } from './database/release_listener.ts'
import { Waiters } from '../waiting/main.ts'

/**
 * A Lucid query client (`db.connection(name)`): the store uses its write
 * client
 */
export interface LucidQueryClient {
  getWriteClient(): Knex
}

export interface DatabaseStoreOptions {
  /**
   * A knex instance, or a Lucid query client. The store never closes it.
   */
  connection: Knex | LucidQueryClient
  /**
   * Table created by the migration of `node ace configure adonis-lock`
   */
  tableName?: string
  /**
   * At most this often (60 s by default), a successful acquire also
   * deletes a small batch of expired rows. `false` leaves pruning to
   * `prune()` and `node ace lock:prune`.
   */
  pruneInterval?: Duration | false
  /**
   * Run the statements as prepared statements, parsed and planned once
   * per connection (true by default): named on PostgreSQL, mysql2's
   * `execute` on MySQL, kept better-sqlite3 statements on SQLite (the
   * `mysql` and `sqlite3` drivers never prepare). Set to false behind a
   * pooler that cannot keep them, such as PgBouncer in transaction mode
   * before 1.21 or with `max_prepared_statements = 0`.
   */
  preparedStatements?: boolean
}

export const DEFAULT_TABLE_NAME = 'locks'

type RunStatement = (sql: string, bindings: Record<string, unknown>) => Promise<unknown>

/**
 * A ttl as the statements take it: whole ms, null for no expiry
 */
function wholeMs(ttl: number | null): number | null {
  return ttl === null ? null : Math.ceil(ttl)
}

/**
 * Rows are pruned this long after they expired or were released. Until
 * then a row keeps its fencing value, so a token handed out after the
 * prune (taken from the database clock) is still greater.
 */
export const PRUNE_GRACE = 1000

const DEFAULT_PRUNE_INTERVAL = 60_000
const OPPORTUNISTIC_PRUNE_LIMIT = 100
const PRUNE_BATCH = 1000

/**
 * Times a semaphore acquire tries again at once when the free slot it
 * picked was taken by another server meanwhile, or when the database
 * broke a deadlock by rolling back its fencing statement
 */
const SLOT_RACE_RETRIES = 3

/**
 * Semaphore statements are cached for this many distinct limits
 */
const CACHED_SEMAPHORE_LIMITS = 32

/**
 * Longest PostgreSQL channel name
 */
const MAX_CHANNEL_BYTES = 63

/**
 * The NOTIFY channel of a table's releases
 */
function releaseChannel(tableName: string): string {
  const channel = `adonis_lock:${tableName}`
  if (Buffer.byteLength(channel) <= MAX_CHANNEL_BYTES) return channel
  return `adonis_lock:${createHash('sha256').update(tableName).digest('hex').slice(0, 32)}`
}

function resolveKnex(connection: DatabaseStoreOptions['connection']): Knex {
  const knex =
    connection && typeof (connection as LucidQueryClient).getWriteClient === 'function'
      ? (connection as LucidQueryClient).getWriteClient()
      : (connection as Knex)
  if (typeof knex?.raw !== 'function' || !knex.client) {
    throw new E_INVALID_LOCK_CONFIG(
      'The database store needs a knex instance or a Lucid query client (db.connection()) as "connection"'
    )
  }
  return knex
}

function pruneIntervalOf(value: DatabaseStoreOptions['pruneInterval']): number | false {
  if (value === false) return false
  if (value === undefined) return DEFAULT_PRUNE_INTERVAL
  try {
    return parseRequiredDuration(value, 'pruneInterval')
  } catch (error) {
    throw new E_INVALID_LOCK_CONFIG(`Invalid database lock store config: ${error.message}`, {
      cause: error,
    })
  }
}

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
 * Locks in a SQL table, through knex (PostgreSQL, MySQL/MariaDB, SQLite).
 * Acquire, release and extend are one atomic statement each, and expiry
 * is computed by the database clock, so servers with skewed clocks agree.
 * On PostgreSQL, waiters are woken by LISTEN/NOTIFY; elsewhere they poll,
 * never past the holder's expiry.
 *
 * A semaphore of `limit` slots is `limit` rows, each a lock of its own,
 * with one sequence of fencing tokens (see dialects.ts).
 */
export class DatabaseStore implements LockStore, SemaphoreStore {
  readonly tableName: string
  readonly dialect: Dialect['name']

  #knex: Knex
  #run: RunStatement
  #dialect: Dialect
  #sql: DialectStatements
  #table: string
  #semaphoreSql = new Map<number, SemaphoreStatements>()
  #channel: string
  #listener: ReleaseListener | undefined
  /**
   * MySQL and SQLite: the waiters of this process, woken by its own
   * releases; those of other processes poll
   */
  #localWaiters: Waiters | undefined
  #pruneInterval: number | false
  #nextPruneAt: number
  #pruning: Promise<void> | undefined
  #closed = false

  constructor(options: DatabaseStoreOptions) {
    if (!options || typeof options !== 'object') {
      throw new E_INVALID_LOCK_CONFIG(
        'The database lock store needs options: { connection, tableName? }'
      )
    }
    this.#knex = resolveKnex(options.connection)
    const client = this.#knex.client
    const dialect = dialectOf(client.dialect)
    if (!dialect) {
      const name = typeof client.config?.client === 'string' ? client.config.client : client.dialect
      throw new E_INVALID_LOCK_CONFIG(
        `The database lock store does not support the "${name}" client. Supported: ${SUPPORTED_DIALECTS}`
      )
    }
    const tableName = options.tableName ?? DEFAULT_TABLE_NAME
    if (typeof tableName !== 'string' || tableName.length === 0) {
      throw new E_INVALID_LOCK_CONFIG(
        `Invalid "tableName" ${JSON.stringify(tableName)} of the database lock store`
      )
    }
    this.tableName = tableName
    this.dialect = dialect.name
    this.#dialect = dialect
    this.#table = this.#knex.raw('??', [tableName]).toQuery()
    this.#sql = dialect.statements(this.#table)
    this.#channel = releaseChannel(tableName)
    this.#pruneInterval = pruneIntervalOf(options.pruneInterval)
    this.#run = this.#runner(options.preparedStatements)
    this.#nextPruneAt = this.#pruneInterval === false ? Infinity : Date.now() + this.#pruneInterval
  }

  /**
   * PostgreSQL wakes waiters by LISTEN/NOTIFY, so a release of any process
   * wakes them; on MySQL and SQLite only the releases of this process do,
   * and the fallback poll stands for the others
   */
  waitForRelease(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: LockClaim
  ): Promise<Handoff | undefined> {
    if (this.#closed) return sleep(ms, signal).then(() => undefined)
    const waiterClaim = claim && { ...claim, store: this }
    if (this.#dialect.name !== 'postgres') {
      return this.#waiters.wait(this.#key(key), ms, signal, waiterClaim)
    }
    this.#listener ??= new ReleaseListener(this.#knex, this.#channel)
    return this.#listener.wait(this.#key(key), ms, signal, waiterClaim)
  }

  hasWaiters(key: string): boolean {
    return !this.#closed && this.#waiters.has(this.#key(key))
  }

  /**
   * Made before the first wait (the LISTEN connection opens only then), so
   * that the first tries of this process already stand in line
   */
  get #waiters(): Waiters {
    if (this.#dialect.name !== 'postgres') {
      return (this.#localWaiters ??= new Waiters({ othersPoll: true }))
    }
    return (this.#listener ??= new ReleaseListener(this.#knex, this.#channel)).waiters
  }

  /**
   * A try of this process's waiters stands in line while it runs
   * (Waiters.trying)
   */
  save(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const stored = this.#key(key)
    const attempt = this.#save(key, stored, owner, ttl)
    return this.#closed ? attempt : this.#waiters.trying(stored, owner, attempt)
  }

  /**
   * One statement inserts the row or takes over an expired one: no
   * transaction is ever left open. When the answer is lost (connection
   * dropped), the statement may still have committed, leaving a lock the
   * caller does not know it holds, without expiry when `ttl` is null. So
   * a failed acquire also releases it, in the background; if that fails
   * too, the lock lasts its ttl (or until `forceRelease()`).
   */
  async #save(
    key: string,
    stored: string,
    owner: string,
    ttl: number | null
  ): Promise<AcquireResult> {
    let result: unknown
    try {
      result = await this.#query(`acquire "${key}"`, this.#sql.acquire, {
        key: stored,
        owner,
        ttl: wholeMs(ttl),
      })
    } catch (error) {
      if (!this.#dialect.isMissingTable((error as Error).cause)) this.#releaseUnknown(key, owner)
      throw error
    }
    const fencingToken = this.#dialect.acquired(result)
    if (fencingToken !== null) {
      this.#pruneNow()
      return { acquired: true, fencingToken }
    }

    let retryAfter = this.#dialect.retryAfter(result)
    if (retryAfter === undefined && this.#sql.remaining) {
      /**
       * Only failed tries pay this read. No row: pruned meanwhile, free.
       */
      const [row] = this.#dialect.rows(
        await this.#query(`acquire "${key}"`, this.#sql.remaining, { key: stored })
      )
      retryAfter = row ? (row.retry_after === null ? null : Number(row.retry_after)) : 0
    }
    return {
      acquired: false,
      retryAfter:
        retryAfter === null || retryAfter === undefined ? retryAfter : Math.max(0, retryAfter),
    }
  }

  /**
   * Hands the lock to the first waiter of this process when there is one;
   * else frees the row for every process's waiters
   */
  async delete(key: string, owner: string): Promise<void> {
    const handedOver = this.#waiters?.handOver(
      this.#key(key),
      this,
      (claim) => this.#handOver(key, owner, claim),
      (claimOwner) => this.delete(key, claimOwner)
    )
    if (handedOver) return handedOver
    const result = await this.#query(`release "${key}"`, this.#sql.release, {
      key: this.#key(key),
      owner,
      channel: this.#channel,
    })
    if (this.#dialect.changes(result) === 0) throw new E_LOCK_NOT_OWNED()
    this.#wakeHere(key, 1)
  }

  async #handOver(key: string, owner: string, claim: LockClaim): Promise<AcquireResult> {
    const result = await this.#query(`release "${key}"`, this.#sql.handOver, {
      key: this.#key(key),
      owner,
      next_owner: claim.owner,
      ttl: wholeMs(claim.ttl),
    })
    const fencingToken = this.#dialect.acquired(result)
    return fencingToken === null ? { acquired: false } : { acquired: true, fencingToken }
  }

  async forceDelete(key: string): Promise<void> {
    const result = await this.#query(`force release "${key}"`, this.#sql.forceRelease, {
      key: this.#key(key),
      channel: this.#channel,
    })
    this.#wakeHere(key, this.#dialect.changes(result))
  }

  /**
   * MySQL and SQLite: a release wakes as many waiters of this process as it
   * freed locks or slots (PostgreSQL's come back through NOTIFY)
   */
  #wakeHere(key: string, freed: number) {
    for (let woken = 0; woken < freed; woken++) {
      if (!this.#localWaiters?.wakeFirst(this.#key(key))) return
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.inspect(key)) !== null
  }

  async owner(key: string): Promise<string | null> {
    const inspection = await this.inspect(key)
    return inspection?.owner ?? null
  }

  async inspect(key: string): Promise<LockInspection | null> {
    const [row] = this.#dialect.rows(
      await this.#query(`check "${key}"`, this.#sql.inspect, { key: this.#key(key) })
    )
    if (!row) return null
    return {
      owner: row.owner as string,
      expiresIn: row.expires_in === null ? null : Math.max(0, Number(row.expires_in)),
      fencingToken: Number(row.fencing),
    }
  }

  async extend(key: string, owner: string, duration: number): Promise<void> {
    const stored = this.#key(key)
    const startedAt = Date.now()
    const result = await this.#query(`extend "${key}"`, this.#sql.extend, {
      key: stored,
      owner,
      duration: Math.ceil(duration),
    })
    if (this.#dialect.changes(result) === 0) throw new E_LOCK_NOT_OWNED()
    this.#waiters?.extended(stored, startedAt + duration)
  }

  /**
   * Takes a free slot of the semaphore. PostgreSQL does it in one
   * statement; MySQL and SQLite read the holders, then take a free slot
   * (another one only when the first picked was taken meanwhile), and
   * MySQL then moves the semaphore's fencing sequence on. As with
   * `save()`, a failed acquire releases in the background what it may
   * have taken.
   */
  async saveSlot(
    key: string,
    owner: string,
    limit: number,
    ttl: number | null
  ): Promise<AcquireResult> {
    const { sql, slotKeys, bindings } = this.#slots(key, limit)
    const values = { ...bindings, owner, ttl: wholeMs(ttl) }
    let result: AcquireResult
    try {
      result = sql.acquire
        ? await this.#takeSlot(key, sql.acquire, values)
        : await this.#takeFreeSlot(key, sql, slotKeys, values, limit)
    } catch (error) {
      if (!this.#dialect.isMissingTable((error as Error).cause)) {
        this.#releaseUnknownSlot(key, owner, limit)
      }
      throw error
    }
    if (result.acquired) this.#pruneNow()
    return result
  }

  async deleteSlot(key: string, owner: string, limit: number): Promise<void> {
    const { sql, bindings } = this.#slots(key, limit)
    const result = await this.#query(`release "${key}"`, sql.release, {
      ...bindings,
      owner,
      channel: this.#channel,
    })
    if (this.#dialect.changes(result) === 0) throw new E_LOCK_NOT_OWNED()
    this.#wakeHere(key, 1)
  }

  async forceDeleteSlots(key: string, limit: number): Promise<void> {
    const { sql, bindings } = this.#slots(key, limit)
    const result = await this.#query(`force release "${key}"`, sql.forceRelease, {
      ...bindings,
      channel: this.#channel,
    })
    this.#wakeHere(key, this.#dialect.changes(result))
  }

  async extendSlot(key: string, owner: string, duration: number, limit: number): Promise<void> {
    const { sql, bindings } = this.#slots(key, limit)
    const result = await this.#query(`extend "${key}"`, sql.extend, {
      ...bindings,
      owner,
      duration: Math.ceil(duration),
    })
    if (this.#dialect.changes(result) === 0) throw new E_LOCK_NOT_OWNED()
  }

  async slotOwners(key: string, limit: number): Promise<string[]> {
    const { sql, bindings } = this.#slots(key, limit)
    const rows = this.#dialect.rows(await this.#query(`check "${key}"`, sql.holders, bindings))
    return rows.map((row) => row.owner as string)
  }

  /**
   * Deletes the rows that expired (or were released) more than a second
   * ago, in batches. Returns how many were deleted.
   */
  async prune(): Promise<number> {
    let total = 0
    while (true) {
      const deleted = await this.#pruneBatch(PRUNE_BATCH)
      total += deleted
      if (deleted < PRUNE_BATCH) return total
    }
  }

  /**
   * Closes the LISTEN connection the store opened, never the knex
   * connection it was given
   */
  async close(): Promise<void> {
    this.#closed = true
    this.#nextPruneAt = Infinity
    await this.#pruning
    const listener = this.#listener
    this.#listener = undefined
    this.#localWaiters?.wakeAll()
    await listener?.close()
  }

  #key(key: string): string {
    return storedKey(key, this.#dialect.name === 'mysql')
  }

  #releaseUnknown(key: string, owner: string) {
    this.delete(key, owner).then(
      () => debug('released "%s", taken by an acquire whose answer was lost', key),
      (error) => {
        if (!(error instanceof E_LOCK_NOT_OWNED)) {
          debug('releasing "%s" after a failed acquire failed: %s', key, error)
        }
      }
    )
  }

  #releaseUnknownSlot(key: string, owner: string, limit: number) {
    this.deleteSlot(key, owner, limit).then(
      () => debug('released a slot of "%s", taken by an acquire whose answer was lost', key),
      (error) => {
        if (!(error instanceof E_LOCK_NOT_OWNED)) {
          debug('releasing a slot of "%s" after a failed acquire failed: %s', key, error)
        }
      }
    )
  }

  /**
   * The statements of a semaphore of `limit` slots, the stored keys of its
   * slots, and their bindings
   */
  #slots(key: string, limit: number) {
    let sql = this.#semaphoreSql.get(limit)
    if (!sql) {
      const placeholders = Array.from({ length: limit }, (_, index) => `:slot${index}`)
      sql = this.#dialect.semaphore(this.#table, placeholders)
      if (this.#semaphoreSql.size < CACHED_SEMAPHORE_LIMITS) this.#semaphoreSql.set(limit, sql)
    }
    const stored = this.#key(key)
    const slotKeys = Array.from({ length: limit }, (_, index) => slotKey(stored, index))
    const bindings: Record<string, unknown> = { key: stored, counter: fencingKey(stored) }
    slotKeys.forEach((slot, index) => (bindings[`slot${index}`] = slot))
    return { sql, slotKeys, bindings }
  }

  /**
   * The one-statement semaphore acquire, tried again when the slot it
   * picked was taken meanwhile
   */
  async #takeSlot(
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
  async #takeFreeSlot(
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
        : await this.#tokenUnlessDeadlock(action, this.#sql.acquire, {
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
   * The fencing token the statement handed out, or null when it took
   * nothing or the database rolled it back to break a deadlock
   */
  async #tokenUnlessDeadlock(
    action: string,
    sql: string,
    bindings: Record<string, unknown>
  ): Promise<number | null> {
    const result = await this.#unlessDeadlock(action, sql, bindings)
    return result === undefined ? null : this.#dialect.acquired(result)
  }

  async #pruneBatch(limit: number): Promise<number> {
    const result = await this.#query('prune', this.#sql.prune, { grace: PRUNE_GRACE, limit })
    return this.#dialect.changes(result)
  }

  /**
   * A bounded prune now and then, in the background of a successful acquire
   */
  #pruneNow() {
    if (this.#pruning || Date.now() < this.#nextPruneAt) return
    this.#nextPruneAt = Date.now() + (this.#pruneInterval as number)
    this.#pruning = this.#pruneBatch(OPPORTUNISTIC_PRUNE_LIMIT)
      .then(
        (deleted) => debug('pruned %d expired locks from "%s"', deleted, this.tableName),
        (error) => debug('pruning "%s" failed: %s', this.tableName, error)
      )
      .finally(() => (this.#pruning = undefined))
  }

  /**
   * Statements run prepared on a connection of the knex pool (see
   * PreparedStatements), or through `knex.raw`, which parses the named
   * bindings on each call: with `preparedStatements: false` on MySQL and
   * SQLite, and with the `mysql` and `sqlite3` drivers
   */
  #runner(preparedStatements: boolean | undefined): RunStatement {
    if (preparedStatements !== undefined && typeof preparedStatements !== 'boolean') {
      throw new E_INVALID_LOCK_CONFIG(
        `Invalid "preparedStatements" ${describe(preparedStatements)} of the database lock store: expected a boolean`
      )
    }
    const prepared = preparedStatements ?? true
    const dialect = this.#dialect.name
    /**
     * Unprepared, PostgreSQL statements still skip `knex.raw`; they run
     * unnamed
     */
    if (PreparedStatements.supports(this.#knex, dialect) && (prepared || dialect === 'postgres')) {
      const statements = new PreparedStatements(this.#knex, dialect, prepared)
      return (sql, bindings) => statements.run(sql, bindings)
    }
    return (sql, bindings) => this.#knex.raw(sql, bindings as Knex.ValueDict)
  }

  async #query(action: string, sql: string, bindings: Record<string, unknown>): Promise<unknown> {
    try {
      return await this.#run(sql, bindings)
    } catch (error) {
      throw this.#storageError(error, action)
    }
  }

  #storageError(error: unknown, action: string): Error {
    if (this.#dialect.isMissingTable(error)) {
      return new E_LOCK_STORAGE_ERROR(
        `the table "${this.tableName}" does not exist. Create it with "node ace configure adonis-lock --store=database" (which writes its migration), then "node ace migration:run"`,
        { cause: error }
      )
    }
    if (this.#dialect.name === 'sqlite' && /near "RETURNING": syntax error/i.test(String(error))) {
      return new E_LOCK_STORAGE_ERROR(`${action} needs SQLite 3.35 or newer (RETURNING)`, {
        cause: error,
      })
    }
    return E_LOCK_STORAGE_ERROR.wrap(error, action)
  }
}
