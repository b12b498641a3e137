import type { Cluster, Redis } from 'ioredis'
import { E_LOCK_NOT_OWNED } from '../../errors.ts'
import { sleep } from '../../wait.ts'
import type {
  AcquireResult,
  Handoff,
  LockClaim,
  LockInspection,
  LockStore,
  SemaphoreStore,
} from '../../types.ts'
import { releaseUnknown } from '../release_unknown.ts'
import { counterKey, counterTtl, lockKey, slotsKey, slotsMessage } from './keys.ts'
import {
  checkRedisStoreOptions,
  DEFAULT_RELEASE_CHANNEL,
  type RedisStoreOptions,
} from './options.ts'
import { ReleaseChannel } from './release_channel.ts'
import {
  ACQUIRE,
  ACQUIRE_SLOT,
  EXTEND,
  EXTEND_SLOT,
  FORCE_RELEASE,
  FORCE_RELEASE_SLOTS,
  HAND_OVER,
  INSPECT,
  MARK_REFUSED,
  RELEASE,
  RELEASE_SLOT,
  SLOT_OWNERS,
  type RedisScript,
} from './scripts/main.ts'
import { acquireResult, isNoScript, isOne, msLeft, ownerIn, scriptTtl, wholeMs } from './values.ts'

/**
 * Locks in Redis (a server, Sentinel or Cluster), through ioredis. Every
 * call is one round trip: one Lua script, or one command; without fencing,
 * a refused `SET NX` adds one script (MARK_REFUSED: marks the lock waited
 * for and reads its PTTL).
 */
export class RedisStore implements LockStore, SemaphoreStore {
  #connection: Redis | Cluster
  #subscriber: Redis | Cluster | undefined
  #channel: string
  #fencing: boolean
  #releases: ReleaseChannel | undefined
  #closed = false

  constructor(options: RedisStoreOptions) {
    checkRedisStoreOptions(options)
    this.#connection = options.connection
    this.#subscriber = options.subscriber
    this.#channel = options.channel ?? DEFAULT_RELEASE_CHANNEL
    this.#fencing = options.fencing ?? true
  }

  /**
   * A try of this process's waiters stands in line while it runs
   * (Waiters.trying)
   */
  save(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const attempt = this.#save(key, owner, ttl)
    return this.#releases?.waiters.trying(key, owner, attempt) ?? attempt
  }

  /**
   * A failed acquire may still have taken the lock (the answer timed out,
   * or was lost with the connection): it is released in the background
   */
  async #save(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    try {
      return await this.#acquire(key, owner, ttl)
    } catch (error) {
      releaseUnknown(() => this.delete(key, owner), `"${key}"`)
      throw error
    }
  }

  async #acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    const redisKey = lockKey(key)
    if (!this.#fencing) {
      const set = await (ttl === null
        ? this.#connection.set(redisKey, owner, 'NX')
        : this.#connection.set(redisKey, owner, 'PX', wholeMs(ttl), 'NX'))
      if (set === 'OK') return { acquired: true, fencingToken: null }
      /**
       * Only refused tries pay this second call
       */
      const left = await this.#run(MARK_REFUSED, 1, [redisKey])
      return { acquired: false, retryAfter: msLeft(left as number) }
    }
    const reply = await this.#run(ACQUIRE, 2, [
      redisKey,
      counterKey(key),
      owner,
      scriptTtl(ttl),
      counterTtl(ttl),
    ])
    return acquireResult(reply as [0 | 1, number])
  }

  /**
   * Hands the lock to the first waiter of this process when there is one,
   * else releases it for every process's waiters
   */
  async delete(key: string, owner: string): Promise<void> {
    const handedOver = this.#releases?.waiters.handOver(
      key,
      this,
      (claim) => this.#handOver(key, owner, claim),
      (claimOwner) => this.delete(key, claimOwner)
    )
    if (handedOver) return handedOver
    const released = await this.#run(RELEASE, 1, [lockKey(key), owner, this.#channel, key])
    if (Number(released) === 0) {
      this.#releases?.waiters.releaseRefused(key)
      throw new E_LOCK_NOT_OWNED()
    }
    this.#wakeUnpublished(key, released)
  }

  async #handOver(key: string, owner: string, claim: LockClaim): Promise<AcquireResult> {
    const [handedOver, token] = (await this.#run(HAND_OVER, 2, [
      lockKey(key),
      counterKey(key),
      owner,
      claim.owner,
      scriptTtl(claim.ttl),
      counterTtl(claim.ttl),
      this.#fencing ? '1' : '',
    ])) as [0 | 1, number?]
    return {
      acquired: isOne(handedOver),
      fencingToken: token === undefined ? null : Number(token),
    }
  }

  async forceDelete(key: string): Promise<void> {
    const released = await this.#run(FORCE_RELEASE, 1, [lockKey(key), this.#channel, key])
    this.#wakeUnpublished(key, released)
  }

  /**
   * A release that published nothing (no try was refused meanwhile) still
   * wakes the waiters of this process that joined the line without a try,
   * as its message would have
   */
  #wakeUnpublished(key: string, released: unknown) {
    if (isOne(released)) this.#releases?.waiters.wakeFirst(key)
  }

  async exists(key: string): Promise<boolean> {
    return isOne(await this.#connection.exists(lockKey(key)))
  }

  async owner(key: string): Promise<string | null> {
    const held = await this.#connection.get(lockKey(key))
    return held === null ? null : ownerIn(held)
  }

  /**
   * Holder, remaining ttl and token in one atomic read. The counter holds
   * the last token handed out for the key, the holder's; it may have
   * expired under a lock held longer than its lifetime, and then the
   * token is unknown (undefined).
   */
  async inspect(key: string): Promise<LockInspection | null> {
    const reply = (await this.#run(INSPECT, 2, [lockKey(key), counterKey(key)])) as
      [string, number, string | null] | null
    if (!reply) return null
    const [held, pttl, counter] = reply
    let fencingToken: number | null | undefined = null
    if (this.#fencing) fencingToken = counter === null ? undefined : Number(counter)
    return { owner: ownerIn(held), expiresIn: msLeft(pttl), fencingToken }
  }

  async extend(key: string, owner: string, duration: number): Promise<void> {
    const startedAt = Date.now()
    const extended = await this.#run(EXTEND, 1, [lockKey(key), owner, Math.ceil(duration)])
    if (!isOne(extended)) throw new E_LOCK_NOT_OWNED()
    this.#releases?.waiters.extended(key, startedAt + duration)
  }

  /**
   * Takes one of `limit` slots. Slots and locks of a key share its fencing
   * counter and its release messages.
   */
  async saveSlot(
    key: string,
    owner: string,
    limit: number,
    ttl: number | null
  ): Promise<AcquireResult> {
    try {
      const reply = await this.#run(ACQUIRE_SLOT, 2, [
        slotsKey(key),
        counterKey(key),
        owner,
        limit,
        scriptTtl(ttl),
        counterTtl(ttl),
      ])
      return acquireResult(reply as [0 | 1, number])
    } catch (error) {
      releaseUnknown(() => this.deleteSlot(key, owner), `a slot of "${key}"`)
      throw error
    }
  }

  async deleteSlot(key: string, owner: string): Promise<void> {
    const released = await this.#run(RELEASE_SLOT, 1, [
      slotsKey(key),
      owner,
      this.#channel,
      slotsMessage(key),
    ])
    if (!isOne(released)) throw new E_LOCK_NOT_OWNED()
  }

  async forceDeleteSlots(key: string): Promise<void> {
    await this.#run(FORCE_RELEASE_SLOTS, 1, [slotsKey(key), this.#channel, slotsMessage(key)])
  }

  async extendSlot(key: string, owner: string, duration: number): Promise<void> {
    const extended = await this.#run(EXTEND_SLOT, 1, [slotsKey(key), owner, Math.ceil(duration)])
    if (!isOne(extended)) throw new E_LOCK_NOT_OWNED()
  }

  async slotOwners(key: string): Promise<string[]> {
    return (await this.#run(SLOT_OWNERS, 1, [slotsKey(key)])) as string[]
  }

  /**
   * Whether waiters of this process (on any store sharing the release
   * channel) stand in line for the key, or one of them was handed it
   */
  hasWaiters(key: string): boolean {
    return this.#releases?.waiters.has(key) ?? false
  }

  /**
   * Waits for the release message of the key on the subscriber connection,
   * opened on the first wait
   */
  waitForRelease(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: LockClaim
  ): Promise<Handoff | undefined> {
    if (this.#closed) return sleep(ms, signal).then(() => undefined)
    return this.#join().wait(key, ms, signal, claim && { ...claim, store: this })
  }

  hasSlotWaiters(key: string): boolean {
    return this.#releases?.waiters.has(slotsMessage(key)) ?? false
  }

  /**
   * Slot waiters stand in a line of their own, woken by slot releases
   */
  async waitForSlot(key: string, ms: number, signal?: AbortSignal, claim?: LockClaim) {
    if (this.#closed) return sleep(ms, signal)
    await this.#join().wait(slotsMessage(key), ms, signal, undefined, claim?.waitingSince)
  }

  #join(): ReleaseChannel {
    return (this.#releases ??= this.#subscriber
      ? ReleaseChannel.join(this.#subscriber, this.#channel, false)
      : ReleaseChannel.join(this.#connection, this.#channel, true))
  }

  /**
   * Closes the subscriber connection the store opened (when no other store
   * shares it); the store's connection stays open
   */
  async close(): Promise<void> {
    this.#closed = true
    const releases = this.#releases
    this.#releases = undefined
    await releases?.leave()
  }

  /**
   * EVALSHA, and EVAL when the server does not know the script (restarted,
   * flushed, failed over)
   */
  #run(script: RedisScript, keys: number, args: Array<string | number>): Promise<unknown> {
    return this.#connection.evalsha(script.sha, keys, ...args).catch((error: unknown) => {
      if (!isNoScript(error)) throw error
      return this.#connection.eval(script.lua, keys, ...args)
    })
  }
}
