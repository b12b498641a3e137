import type { Knex } from 'knex'
import debug from '../../debug.ts'
import type { Handoff } from '../../types.ts'
import { Waiters, type WaiterClaim } from '../../waiting/main.ts'
import { releasedKey } from './keys.ts'

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
 * pg waits for a connection forever by default: a server that accepts and
 * never answers would keep notifications off for good. The connect gives
 * up after this long, or the knex `acquireConnectionTimeout` when shorter,
 * unless the app set pg's `connectionTimeoutMillis`.
 */
const CONNECT_TIMEOUT = 10_000

/**
 * The pg connection settings, with a connect timeout unless they have one.
 * Copied with their hidden properties: knex keeps the password out of
 * sight that way.
 */
function withConnectTimeout(settings: unknown, timeout: number): unknown {
  if (typeof settings === 'string') {
    return { connectionString: settings, connectionTimeoutMillis: timeout }
  }
  const copy: { connectionTimeoutMillis?: number } = Object.defineProperties(
    {},
    Object.getOwnPropertyDescriptors(settings ?? {})
  )
  copy.connectionTimeoutMillis ??= timeout
  return copy
}

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
  /**
   * The connection being opened, until it listens
   */
  #opening: PgConnection | undefined
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
   * Closes the listening connection. One still being opened is not waited
   * for, which could take as long as the connect timeout: it is ended now,
   * and its connect fails.
   */
  async close(): Promise<void> {
    this.#closed = true
    const connection = this.#connection
    this.#connection = undefined
    this.waiters.wakeAll()
    if (this.#opening) void this.#destroy(this.#opening)
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
    try {
      await this.#listen(await this.#acquireRawConnection())
    } finally {
      this.#opening = undefined
    }
  }

  async #listen(connection: PgConnection) {
    if (this.#closed) return this.#destroy(connection)
    connection.on('error', (error: Error) => this.#lost(connection, error))
    connection.on('end', () => this.#lost(connection, 'ended'))
    connection.on('notification', (message: { channel: string; payload?: string }) => {
      if (message.channel === this.#channel && message.payload !== undefined) {
        /**
         * One release frees the lock for one waiter: waking the longest
         * waiting one alone spares the others a try that would fail
         */
        this.waiters.wakeFirst(releasedKey(message.payload))
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
   * The knex client's own raw connect (Lucid's, when Lucid resolves the
   * settings), with a pg client bounded by the connect timeout and kept
   * in `#opening` until it listens, for close() to end it
   */
  #acquireRawConnection(): Promise<PgConnection> {
    const client = this.#knex.client
    const configured = client.config.acquireConnectionTimeout
    const timeout =
      typeof configured === 'number' && configured > 0
        ? Math.min(configured, CONNECT_TIMEOUT)
        : CONNECT_TIMEOUT
    const listener = this
    const ListeningClient = class extends client.driver.Client {
      constructor(settings: unknown) {
        super(withConnectTimeout(settings, timeout))
        listener.#opening = this as unknown as PgConnection
      }
    }
    const driver = Object.create(client.driver, { Client: { value: ListeningClient } })
    return Object.create(client, { driver: { value: driver } }).acquireRawConnection()
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
