import { Socket } from 'node:net'
import type { Knex } from 'knex'
import debug from '../../debug.ts'
import type { Handoff } from '../../types.ts'
import { Waiters, type WaiterClaim } from '../../waiting/main.ts'
import { releasedKey } from './keys.ts'

/**
 * The part of a `pg` client the listener uses
 */
interface PgConnection {
  connect(): Promise<unknown>
  query(sql: string): Promise<unknown>
  on(event: string, listener: (...args: any[]) => void): unknown
  end(): Promise<void>
}

type PgSettings = { connectionTimeoutMillis?: number; stream?: unknown } & Record<string, unknown>

/**
 * The part of the `pg` module the listener uses
 */
interface PgModule {
  Client: new (settings: PgSettings) => PgConnection
}

/**
 * After a failed connect, waiters poll for this long before the next try
 */
const RECONNECT_DELAY = 1000

/**
 * pg waits for a connection forever by default: the connect gives up after
 * this long (or knex's shorter `acquireConnectionTimeout`), unless the
 * settings have their own `connectionTimeoutMillis`
 */
const CONNECT_TIMEOUT = 10_000

/**
 * The LISTEN connection never keeps the process alive on its own: a waiter
 * has its own timer, and once nobody waits the process may exit
 */
function unrefSocket(): Socket {
  const socket = new Socket()
  socket.unref()
  return socket
}

/**
 * The pg settings of the knex config (a connection string, an object, or a
 * function giving either), with a connect timeout. Copied with their
 * hidden properties, where a password may be kept.
 */
async function listenerSettings(knex: Knex): Promise<PgSettings> {
  const config = knex.client.config as Knex.Config
  const configured = config.acquireConnectionTimeout
  const timeout =
    typeof configured === 'number' && configured > 0
      ? Math.min(configured, CONNECT_TIMEOUT)
      : CONNECT_TIMEOUT
  let settings: unknown = config.connection
  if (typeof settings === 'function') settings = await settings()
  const copy: PgSettings =
    typeof settings === 'string'
      ? { connectionString: settings }
      : Object.defineProperties({}, Object.getOwnPropertyDescriptors(settings ?? {}))
  copy.connectionTimeoutMillis ??= timeout
  copy.stream ??= unrefSocket()
  return copy
}

/**
 * PostgreSQL release notifications for one store: one connection, outside
 * the knex pool, LISTENs and wakes the first waiter of each released key.
 * Best effort: waiters are all woken once the LISTEN is in place, and their
 * timeout stays the fallback.
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
    claim?: WaiterClaim,
    since?: number
  ): Promise<Handoff | undefined> {
    const waiting = this.waiters.wait(key, ms, signal, claim, since)
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
   * A pg client of its own, outside the knex pool, kept in `#opening` until
   * it listens, for close() to end it
   */
  async #acquireRawConnection(): Promise<PgConnection> {
    const postgres = await import('pg')
    const { Client } = postgres.default as unknown as PgModule
    const connection = new Client(await listenerSettings(this.#knex))
    this.#opening = connection
    await connection.connect()
    return connection
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
      await connection.end()
    } catch (error) {
      debug('closing the LISTEN connection failed: %s', error)
    }
  }
}
