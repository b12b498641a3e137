import type { Cluster, Redis } from 'ioredis'
import debug from '../../debug.ts'
import type { Handoff } from '../../types.ts'
import { Waiters, type WaiterClaim } from '../../waiting/main.ts'

type Connection = Redis | Cluster

/**
 * How long a release nobody here was waiting for is remembered. A failed
 * acquire whose reply crossed the release message on the wire registers
 * its waiter just after the message went by: it then retries at once
 * rather than sleeping through a free lock.
 */
const UNCLAIMED_FOR = 100

/**
 * Channels by the connection they subscribe on: the stores of a process
 * sharing a connection share one subscriber connection
 */
const joined = new WeakMap<Connection, Map<string, ReleaseChannel>>()

function noop() {}

/**
 * The release messages of one pub/sub channel, each carrying a lock key,
 * dispatched to the waiters of this process. A release wakes one waiter
 * of its key (the longest waiting one): every waiter retrying would only
 * make all but one of them fail again.
 */
export class ReleaseChannel {
  #source: Connection
  #owned: boolean
  #name: string
  #id: string
  #connection: Connection
  #users = 0
  /**
   * Waiters of this process by key; a release of a store on this channel
   * may hand its lock to the first of them
   */
  readonly waiters = new Waiters()
  #unclaimed = new Map<string, number>()

  /**
   * The channel `name` on `source`: a connection the channel SUBSCRIBEs on
   * as is, or, when `owned`, a connection it duplicates and closes with
   * the last store leaving it
   */
  static join(source: Connection, name: string, owned: boolean): ReleaseChannel {
    let channels = joined.get(source)
    if (!channels) {
      channels = new Map()
      joined.set(source, channels)
    }
    const id = `${owned ? 'owned' : 'given'}:${name}`
    let channel = channels.get(id)
    if (!channel) {
      channel = new ReleaseChannel(source, name, id, owned)
      channels.set(id, channel)
    }
    channel.#users++
    return channel
  }

  private constructor(source: Connection, name: string, id: string, owned: boolean) {
    this.#source = source
    this.#owned = owned
    this.#name = name
    this.#id = id
    this.#connection = owned ? source.duplicate() : source
    this.#connection.on('message', this.#dispatch)
    /**
     * Subscribing on every `ready` also covers a first SUBSCRIBE refused
     * while connecting (`enableOfflineQueue: false`); subscribing twice is
     * harmless
     */
    this.#connection.on('ready', this.#subscribe)
    if (owned) {
      this.#connection.on('error', this.#reportError)
      source.once('end', this.#sourceEnded)
    }
    if (this.#connection.status === 'ready') this.#subscribe()
    else if (this.#connection.status === 'wait') this.#connection.connect().catch(noop)
  }

  /**
   * Resolves when the key is released, after `ms`, when a release of this
   * process hands the lock to `claim`, or rejects with the signal's reason.
   * A subscriber that is down only means the wait lasts `ms`. `since`: the
   * place in line of a waiter without claim (Waiters.wait)
   */
  async wait(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: WaiterClaim,
    since?: number
  ): Promise<Handoff | undefined> {
    signal?.throwIfAborted()
    const releasedAt = this.#unclaimed.get(key)
    if (releasedAt !== undefined) {
      this.#unclaimed.delete(key)
      if (performance.now() - releasedAt < UNCLAIMED_FOR) return
    }
    if (ms <= 0) return
    return this.waiters.wait(key, ms, signal, claim, since)
  }

  /**
   * The last store leaving closes the connection the channel opened, or
   * unsubscribes a given one, and wakes whoever still waits
   */
  async leave(): Promise<void> {
    if (--this.#users > 0) return
    this.#unjoin()
    this.#connection.off('message', this.#dispatch)
    this.#connection.off('ready', this.#subscribe)
    this.waiters.wakeAll()
    if (this.#owned) {
      this.#source.off('end', this.#sourceEnded)
      this.#connection.disconnect()
    } else {
      /**
       * Not awaited: a connection that is reconnecting holds the command
       * in its offline queue, maybe for ever, and closing must not wait
       */
      this.#connection.unsubscribe(this.#name).catch(noop)
    }
  }

  #subscribe = () => {
    this.#connection.subscribe(this.#name).catch((error: unknown) => {
      debug('subscribing to %s failed: %O', this.#name, error)
    })
  }

  /**
   * The app closed the connection the subscriber was duplicated from: the
   * subscriber goes too, so that it never keeps the process alive alone.
   * Waiters still waiting poll.
   */
  #sourceEnded = () => {
    this.#unjoin()
    this.#connection.disconnect()
    this.waiters.wakeAll()
  }

  /**
   * Once the source ended, a channel of the same id may have replaced this
   * one: that one stays
   */
  #unjoin() {
    const channels = joined.get(this.#source)
    if (channels?.get(this.#id) === this) channels.delete(this.#id)
  }

  #reportError = (error: unknown) => {
    debug('release subscriber error: %O', error)
  }

  #dispatch = (channel: string, key: string) => {
    if (channel !== this.#name) return
    if (!this.waiters.wakeFirst(key)) this.#remember(key)
  }

  /**
   * Keeps the unclaimed releases of the last UNCLAIMED_FOR ms, oldest first
   */
  #remember(key: string) {
    const now = performance.now()
    this.#unclaimed.delete(key)
    this.#unclaimed.set(key, now)
    for (const [oldKey, releasedAt] of this.#unclaimed) {
      if (now - releasedAt < UNCLAIMED_FOR) break
      this.#unclaimed.delete(oldKey)
    }
  }
}
