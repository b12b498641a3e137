import type { Knex } from 'knex'
import debug from '../../debug.ts'
import type { Handoff } from '../../types.ts'
import { Waiters, type WaiterClaim } from '../waiters.ts'

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
  /**
   * Waiters of this process by key; a release of the store may hand its
   * lock to the first of them
   */
  readonly waiters = new Waiters()

  constructor(knex: Knex, channel: string) {
    this.#knex = knex
    this.#channel = channel
  }

  /**
   * Resolves when `key` is released, after `ms`, when a release of this
   * process hands the lock to `claim`, or rejects when the signal aborts
   */
  wait(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: WaiterClaim
  ): Promise<Handoff | undefined> {
    const waiting = this.waiters.wait(key, ms, signal, claim)
    this.#connect()
    return waiting
  }

  /**
   * Closes the listening connection
   */
  async close(): Promise<void> {
    this.#closed = true
    await this.#connecting
    const connection = this.#connection
    this.#connection = undefined
    this.waiters.wakeAll()
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
        /**
         * One release frees the lock for one waiter: waking the longest
         * waiting one alone spares the others a try that would fail
         */
        this.waiters.wakeFirst(message.payload)
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
    this.waiters.wakeAll()
  }

  /**
   * The next wait opens a new connection; meanwhile nobody would wake the
   * current waiters, so they retry now
   */
  #lost(connection: PgConnection, reason: unknown) {
    if (this.#connection !== connection) return
    debug('LISTEN connection lost: %s', reason)
    this.#connection = undefined
    this.waiters.wakeAll()
  }

  async #destroy(connection: PgConnection) {
    try {
      await this.#knex.client.destroyRawConnection(connection)
    } catch (error) {
      debug('closing the LISTEN connection failed: %s', error)
    }
  }
}
