import type { Knex } from 'knex'
import { E_INVALID_LOCK_CONFIG, E_LOCK_NOT_OWNED } from '../../errors.ts'
import type {
  AcquireResult,
  Handoff,
  LockClaim,
  LockInspection,
  LockStore,
  SemaphoreStore,
} from '../../types.ts'
import { sleep } from '../../wait.ts'
import { releaseUnknown } from '../release_unknown.ts'
import { Waiters, type WaiterClaim } from '../../waiting/main.ts'
import {
  dialectOf,
  SUPPORTED_DIALECTS,
  type Dialect,
  type DialectStatements,
} from './dialects/main.ts'
import { slotWaitersKey, storedKey } from './keys.ts'
import {
  DEFAULT_TABLE_NAME,
  pruneIntervalOf,
  releaseChannel,
  resolveKnex,
  type DatabaseStoreOptions,
} from './options.ts'
import { PRUNE_BATCH, Pruner } from './pruner.ts'
import { queryRunner, type Query } from './query.ts'
import { ReleaseListener } from './release_listener.ts'
import { SemaphoreSlots } from './semaphore_slots.ts'

export { PRUNE_GRACE } from './pruner.ts'

/**
 * A ttl as the statements take it: whole ms, null for no expiry
 */
function statementTtl(ttl: number | null): number | null {
  return ttl === null ? null : Math.ceil(ttl)
}

/**
 * Locks in a SQL table, through knex (PostgreSQL, MySQL/MariaDB, SQLite).
 * Acquire, release and extend are one atomic statement each, and expiry
 * is computed by the database clock, so servers with skewed clocks agree.
 * On PostgreSQL every process's releases wake waiters (LISTEN/NOTIFY); on
 * MySQL and SQLite only this process's do, and waiters poll for the
 * others', never past the holder's expiry.
 */
export class DatabaseStore implements LockStore, SemaphoreStore {
  readonly tableName: string
  readonly dialect: Dialect['name']

  #knex: Knex
  #query: Query
  #dialect: Dialect
  #sql: DialectStatements
  #table: string
  #slots: SemaphoreSlots
  #channel: string
  #listener: ReleaseListener | undefined
  /**
   * MySQL and SQLite: the waiters of this process, woken by its own
   * releases; those of other processes poll
   */
  #localWaiters: Waiters | undefined
  #pruner: Pruner
  #pruneRows: string | undefined
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
    this.#query = queryRunner(this.#knex, dialect, tableName, options.preparedStatements)
    this.#slots = new SemaphoreSlots(this.#query, dialect, this.#table, this.#sql.acquire)
    this.#pruner = new Pruner(
      (grace, limit) => this.#pruneBatch(grace, limit),
      tableName,
      pruneIntervalOf(options.pruneInterval)
    )
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
    return this.#wait(this.#key(key), ms, signal, claim && { ...claim, store: this })
  }

  hasWaiters(key: string): boolean {
    return !this.#closed && this.#waiters.has(this.#key(key))
  }

  /**
   * Slot waiters stand in a line of their own, woken by slot releases
   */
  async waitForSlot(key: string, ms: number, signal?: AbortSignal, claim?: LockClaim) {
    if (this.#closed) return sleep(ms, signal)
    await this.#wait(slotWaitersKey(this.#key(key)), ms, signal, undefined, claim?.waitingSince)
  }

  /**
   * On PostgreSQL the listener opens its LISTEN connection for the first wait
   */
  #wait(
    line: string,
    ms: number,
    signal: AbortSignal | undefined,
    claim: WaiterClaim | undefined,
    since?: number
  ): Promise<Handoff | undefined> {
    if (this.#dialect.name !== 'postgres') return this.#waiters.wait(line, ms, signal, claim, since)
    this.#listener ??= new ReleaseListener(this.#knex, this.#channel)
    return this.#listener.wait(line, ms, signal, claim, since)
  }

  hasSlotWaiters(key: string): boolean {
    return !this.#closed && this.#waiters.has(slotWaitersKey(this.#key(key)))
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
        ttl: statementTtl(ttl),
      })
    } catch (error) {
      if (!this.#dialect.isMissingTable((error as Error).cause))
        releaseUnknown(() => this.delete(key, owner), `"${key}"`)
      throw error
    }
    const fencingToken = this.#dialect.acquired(result)
    if (fencingToken !== null) {
      this.#pruner.now()
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
    const handedOver = this.#waiters.handOver(
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
    if (this.#dialect.changes(result) === 0) {
      this.#waiters.releaseRefused(this.#key(key))
      throw new E_LOCK_NOT_OWNED()
    }
    this.#wakeHere(this.#key(key), 1)
  }

  async #handOver(key: string, owner: string, claim: LockClaim): Promise<AcquireResult> {
    const result = await this.#query(`release "${key}"`, this.#sql.handOver, {
      key: this.#key(key),
      owner,
      next_owner: claim.owner,
      ttl: statementTtl(claim.ttl),
    })
    const fencingToken = this.#dialect.acquired(result)
    return fencingToken === null ? { acquired: false } : { acquired: true, fencingToken }
  }

  async forceDelete(key: string): Promise<void> {
    const result = await this.#query(`force release "${key}"`, this.#sql.forceRelease, {
      key: this.#key(key),
      channel: this.#channel,
    })
    this.#wakeHere(this.#key(key), this.#dialect.changes(result))
  }

  /**
   * MySQL and SQLite: a release wakes as many waiters of this process as it
   * freed locks or slots (PostgreSQL's come back through NOTIFY). `line`:
   * the stored key, or the line of a semaphore's waiters
   */
  #wakeHere(line: string, freed: number) {
    for (let woken = 0; woken < freed; woken++) {
      if (!this.#localWaiters?.wakeFirst(line)) return
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
    this.#waiters.extended(stored, startedAt + duration)
  }

  /**
   * Takes a free slot of the semaphore. As with `save()`, a failed acquire
   * releases in the background what it may have taken.
   */
  async saveSlot(
    key: string,
    owner: string,
    limit: number,
    ttl: number | null
  ): Promise<AcquireResult> {
    let result: AcquireResult
    try {
      result = await this.#slots.take(key, this.#key(key), owner, limit, statementTtl(ttl))
    } catch (error) {
      if (!this.#dialect.isMissingTable((error as Error).cause)) {
        releaseUnknown(() => this.deleteSlot(key, owner, limit), `a slot of "${key}"`)
      }
      throw error
    }
    if (result.acquired) this.#pruner.now()
    return result
  }

  async deleteSlot(key: string, owner: string, limit: number): Promise<void> {
    const { sql, bindings } = this.#slots.of(this.#key(key), limit)
    const result = await this.#query(`release "${key}"`, sql.release, {
      ...bindings,
      owner,
      channel: this.#channel,
    })
    if (this.#dialect.changes(result) === 0) throw new E_LOCK_NOT_OWNED()
    this.#wakeHere(slotWaitersKey(this.#key(key)), 1)
  }

  async forceDeleteSlots(key: string, limit: number): Promise<void> {
    const { sql, bindings } = this.#slots.of(this.#key(key), limit)
    const result = await this.#query(`force release "${key}"`, sql.forceRelease, {
      ...bindings,
      channel: this.#channel,
    })
    this.#wakeHere(slotWaitersKey(this.#key(key)), this.#dialect.changes(result))
  }

  async extendSlot(key: string, owner: string, duration: number, limit: number): Promise<void> {
    const { sql, bindings } = this.#slots.of(this.#key(key), limit)
    const result = await this.#query(`extend "${key}"`, sql.extend, {
      ...bindings,
      owner,
      duration: Math.ceil(duration),
    })
    if (this.#dialect.changes(result) === 0) throw new E_LOCK_NOT_OWNED()
  }

  async slotOwners(key: string, limit: number): Promise<string[]> {
    const { sql, bindings } = this.#slots.of(this.#key(key), limit)
    const rows = this.#dialect.rows(await this.#query(`check "${key}"`, sql.holders, bindings))
    return rows.map((row) => row.owner as string)
  }

  /**
   * Deletes the rows that expired (or were released) more than a second
   * ago, in batches. Returns how many were deleted.
   */
  prune(): Promise<number> {
    return this.#pruner.prune()
  }

  /**
   * Closes the LISTEN connection the store opened, never the knex
   * connection it was given
   */
  async close(): Promise<void> {
    this.#closed = true
    await this.#pruner.stop()
    const listener = this.#listener
    this.#listener = undefined
    this.#localWaiters?.wakeAll()
    await listener?.close()
  }

  #key(key: string): string {
    return storedKey(key, this.#dialect.name === 'mysql')
  }

  async #pruneBatch(grace: number, limit: number): Promise<number> {
    if (this.#sql.prune) {
      return this.#dialect.changes(await this.#query('prune', this.#sql.prune, { grace, limit }))
    }
    const expired = this.#dialect.rows(
      await this.#query('prune', this.#sql.expired!, { grace, limit })
    )
    if (expired.length === 0) return 0
    this.#pruneRows ??= this.#dialect.pruneRows!(
      this.#table,
      Array.from({ length: PRUNE_BATCH }, (_, index) => `:row${index}`)
    )
    const bindings: Record<string, unknown> = { grace }
    for (let index = 0; index < PRUNE_BATCH; index++) {
      bindings[`row${index}`] = (expired[index]?.key as string | undefined) ?? null
    }
    return this.#dialect.changes(await this.#query('prune', this.#pruneRows, bindings))
  }
}
