import type { Knex } from 'knex'
import debug from '../../debug.ts'
import { settleWithin } from '../../wait.ts'

/**
 * The part of a `pg` client the listener uses
 */
interface PgConnection {
  query(sql: string): Promise<unknown>
  on(event: string, listener: (...args: any[]) => void): unknown
}

/**
 * After a failed connect, waiters poll for this long before the next try
 */
const RECONNECT_DELAY = 1000

/**
 * PostgreSQL release notifications for one store: a single connection
 * LISTENs on the channel the release statements notify, and wakes the
 * waiters of the released key. The connection is opened on the first
 * wait, outside the knex pool so it never holds back the app's queries.
 *
 * Each release wakes the longest waiting waiter of its key. Waking is
 * best effort: a release that lands while the connection is
 * being (re)opened is not seen, so every waiter is woken once the LISTEN
 * is in place, and the caller's timeout stays the fallback.
 */
export class ReleaseListener {
  #knex: Knex
  #channel: string
  #connection: PgConnection | undefined
  #connecting: Promise<void> | undefined
  #retryAt = 0
  #closed = false
  #waiters = new Map<string, Set<() => void>>()

  constructor(knex: Knex, channel: string) {
    this.#knex = knex
    this.#channel = channel
  }

  /**
   * Resolves when `key` is released, after `ms`, or rejects when the
   * signal aborts
   */
  async wait(key: string, ms: number, signal?: AbortSignal): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>()
    let waiters = this.#waiters.get(key)
    if (!waiters) {
      waiters = new Set()
      this.#waiters.set(key, waiters)
    }
    waiters.add(resolve)
    try {
      this.#connect()
      await settleWithin(promise, ms, signal)
    } finally {
      waiters.delete(resolve)
      if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key)
    }
  }

  /**
   * Closes the listening connection
   */
  async close(): Promise<void> {
    this.#closed = true
    await this.#connecting
    const connection = this.#connection
    this.#connection = undefined
    this.#wakeAll()
    if (connection) await this.#destroy(connection)
  }

  #connect() {
    if (this.#connection || this.#connecting || this.#closed || Date.now() < this.#retryAt) return
    this.#connecting = this.#open()
      .catch((error) => {
        this.#retryAt = Date.now() + RECONNECT_DELAY
        debug('LISTEN connection failed, waiters poll: %s', error)
      })
      .finally(() => (this.#connecting = undefined))
  }

  async #open() {
    const connection = (await this.#knex.client.acquireRawConnection()) as PgConnection
    connection.on('error', (error: Error) => this.#lost(connection, error))
    connection.on('end', () => this.#lost(connection, 'ended'))
    connection.on('notification', (message: { channel: string; payload?: string }) => {
      if (message.channel === this.#channel && message.payload !== undefined) {
        this.#wake(message.payload)
      }
    })
    try {
      await connection.query(`LISTEN "${this.#channel.replaceAll('"', '""')}"`)
    } catch (error) {
      await this.#destroy(connection)
      throw error
    }
    if (this.#closed) return this.#destroy(connection)
    this.#connection = connection
    this.#wakeAll()
  }

  /**
   * The next wait opens a new connection; meanwhile nobody would wake the
   * current waiters, so they retry now
   */
  #lost(connection: PgConnection, reason: unknown) {
    if (this.#connection !== connection) return
    debug('LISTEN connection lost: %s', reason)
    this.#connection = undefined
    this.#wakeAll()
  }

  async #destroy(connection: PgConnection) {
    try {
      await this.#knex.client.destroyRawConnection(connection)
    } catch (error) {
      debug('closing the LISTEN connection failed: %s', error)
    }
  }

  /**
   * One release frees the lock for one waiter: waking the longest waiting
   * one alone spares the others a try that would fail
   */
  #wake(key: string) {
    const waiters = this.#waiters.get(key)
    const [first] = waiters ?? []
    if (!first) return
    waiters!.delete(first)
    first()
  }

  hasWaiters(key: string): boolean {
    return this.#waiters.has(key)
  }

  #wakeAll() {
    const all = [...this.#waiters.values()]
    this.#waiters.clear()
    for (const waiters of all) for (const resolve of waiters) resolve()
  }
}
