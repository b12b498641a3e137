import { E_LOCK_NOT_OWNED, E_LOCK_STORAGE_ERROR } from '../errors.ts'
import debug from '../debug.ts'
import type { AcquireResult, Handoff, LockClaim } from '../types.ts'
import { Turns, type Turn } from './turns.ts'
import { arrivalAt } from './wait_for_release.ts'

/**
 * After a pause where others poll, the first waiter here tries this long
 * before any other waiter here may
 */
const FIRST_TRY_HEAD_START = 10

/**
 * A waiter being handed the lock stops waiting on its own timer; should
 * the store call never answer, its acquire fails this long after its
 * timer (a try then would take as long again, past the timeout)
 */
const HANDOVER_GRACE = 1000

/**
 * A waiting lock's claim, with the store it waits through: only a release
 * of that store hands it the lock
 */
export interface WaiterClaim extends LockClaim {
  store: object
}

interface Waiter {
  claim?: WaiterClaim
  since: number
  /**
   * Ends the wait: woken (or timed out) without a hand-over, or with one
   */
  settle(handoff?: Handoff): void
  /**
   * Taken out of line to be handed the lock
   */
  take(): void
  /**
   * Still waits for the hand-over it was taken for
   */
  taken(): boolean
}

/**
 * The waiters of this process, by key, in the order their acquires
 * started. See main.ts for the words used here.
 */
export class Waiters {
  #lines = new Map<string, Waiter[]>()
  /**
   * Tries of this process in progress, by key
   */
  #trying = new Map<string, number>()
  #turns: Turns

  /**
   * `othersPoll`: no release message of this process reaches the waiters
   * of other processes
   */
  constructor(options: { othersPoll?: boolean } = {}) {
    this.#turns = new Turns(options.othersPoll ?? false)
  }

  /**
   * Resolves when woken or after `ms` (undefined), when a release of this
   * process handed the lock to `claim` (the hand-over), or rejects with
   * the signal's reason. `since`: the waiter's place in line, for one
   * that has no claim (a semaphore's)
   */
  wait(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: WaiterClaim,
    since: number = claim?.waitingSince ?? arrivalAt()
  ): Promise<Handoff | undefined> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    this.#turns.backInLine(key, claim?.owner)
    const { promise, resolve, reject } = Promise.withResolvers<Handoff | undefined>()
    let state: 'waiting' | 'taken' | 'settled' = 'waiting'
    let timer: NodeJS.Timeout
    const finish = () => {
      state = 'settled'
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      this.#leave(key, waiter)
    }
    const onAbort = () => {
      const wasFirst = this.#lines.get(key)?.[0] === waiter
      finish()
      reject(signal!.reason)
      /**
       * Those behind it may have joined without a try of their own
       */
      if (wasFirst) this.#wakeInPlaceOfLeaver(key)
    }
    const waiter: Waiter = {
      claim,
      since,
      settle(handoff) {
        if (state === 'settled') return
        finish()
        resolve(handoff)
      },
      take() {
        state = 'taken'
      },
      taken: () => state === 'taken',
    }
    const onTimer = () => {
      if (state === 'taken') {
        timer = setTimeout(() => {
          finish()
          reject(
            new E_LOCK_STORAGE_ERROR(
              `the store did not hand the lock over within ${HANDOVER_GRACE} ms`
            )
          )
        }, HANDOVER_GRACE)
        return
      }
      /**
       * During a pause a try would take back the lock left to others. Where
       * others poll, the first waiter tries at its end and the rest spread
       * over the next delay, so none beats the first one's try.
       */
      const pauseLeft = this.#turns.pauseLeft(key)
      if (pauseLeft <= 0) return waiter.settle()
      const behindFirst = this.#turns.othersPoll && this.#lines.get(key)?.[0] !== waiter
      const spread = behindFirst ? FIRST_TRY_HEAD_START + Math.random() * ms : 0
      timer = setTimeout(onTimer, pauseLeft + spread)
    }
    timer = setTimeout(onTimer, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, { once: true })
    let line = this.#lines.get(key)
    if (!line) {
      line = []
      this.#lines.set(key, line)
    }
    /**
     * A waiter back after a refused try takes its place again, ahead of
     * those whose acquire started after its own
     */
    let index = line.length
    while (index > 0 && line[index - 1].since > waiter.since) index--
    line.splice(index, 0, waiter)
    return promise
  }

  /**
   * Whether waiters stand in line for the key, are trying it, or one of
   * them holds it: a newcomer then joins the line
   */
  has(key: string): boolean {
    return this.#lines.has(key) || this.#trying.has(key) || this.#turns.isHeldHere(key)
  }

  /**
   * A lock of the key was extended, to expire at `until` at the earliest
   */
  extended(key: string, until: number) {
    this.#turns.extended(key, until)
  }

  /**
   * Counts `owner`'s try of the key as standing in line while the store
   * call runs, so a newcomer does not take a lock freed meanwhile. A try
   * that ends without the lock wakes the first waiter, unless its acquire
   * went back in line.
   */
  trying(key: string, owner: string, attempt: Promise<AcquireResult>): Promise<AcquireResult> {
    this.#trying.set(key, (this.#trying.get(key) ?? 0) + 1)
    const ended = (acquired: boolean) => {
      const left = this.#trying.get(key)! - 1
      if (left === 0) this.#trying.delete(key)
      else this.#trying.set(key, left)
      if (!acquired) setImmediate(() => this.#wakeAfterGivenUp(key, owner))
    }
    return attempt.then(
      (result) => {
        ended(result.acquired)
        return result
      },
      (error: unknown) => {
        ended(false)
        throw error
      }
    )
  }

  /**
   * On a release message: wakes the first waiter of the key, or, when this
   * process just released the key to every process, after the pause.
   * False when nobody waits for the key here.
   */
  wakeFirst(key: string): boolean {
    const pause = this.#turns.pauseOnRelease(key)
    if (pause !== undefined) {
      if (!this.#lines.has(key)) return false
      setTimeout(() => {
        const first = this.#lines.get(key)?.[0]
        this.#turns.triesFirstAfterPause(key, first?.claim?.owner)
        first?.settle()
      }, pause)
      return true
    }
    const first = this.#lines.get(key)?.[0]
    if (!first) return false
    first.settle()
    return true
  }

  wakeAll() {
    const lines = [...this.#lines.values()]
    this.#lines.clear()
    for (const line of lines) for (const waiter of line) waiter.settle()
  }

  /**
   * A release that `handOver()` left to the store was refused (not the
   * owner): whoever holds the key here still does
   */
  releaseRefused(key: string) {
    this.#turns.releaseRefused(key)
  }

  /**
   * Releases by handing the lock to the first waiter of the key, when it
   * waits through `store` and this process's turn is not over. `transfer`
   * moves the lock to the claim's owner in one owner-checked store call;
   * `release` frees it for an owner that gave up meanwhile. False, having
   * done nothing, when the caller must release as usual.
   */
  handOver(
    key: string,
    store: object,
    transfer: (claim: LockClaim) => Promise<AcquireResult>,
    release: (owner: string) => Promise<void>
  ): false | Promise<void> {
    this.#turns.releasing(key)
    const first = this.#lines.get(key)?.[0]
    if (!first?.claim || first.claim.store !== store) return false
    const turn = this.#turns.nextHandOver(key)
    if (!turn) return false
    first.take()
    this.#leave(key, first)
    return this.#handOverTo(first, turn, transfer, release)
  }

  async #handOverTo(
    waiter: Waiter,
    turn: Turn,
    transfer: (claim: LockClaim) => Promise<AcquireResult>,
    release: (owner: string) => Promise<void>
  ): Promise<void> {
    const claim = waiter.claim!
    const startedAt = Date.now()
    const handoffStartedAt = performance.now()
    /**
     * Held here all along, by the releaser then by the waiter: a newcomer
     * joins the line rather than spend a refused try
     */
    turn.heldHereUntil = Infinity
    let result: AcquireResult
    try {
      result = await transfer(claim)
    } catch (error) {
      turn.heldHereUntil = 0
      /**
       * The lock may have moved before the answer was lost: free it, and
       * let the waiter try on its own
       */
      waiter.settle()
      releaseQuietly(release, claim.owner)
      throw error
    }
    if (!result.acquired) {
      /**
       * Not the owner (or no longer): the lock stays where it was, and so
       * do the turn's count and who holds it here
       */
      turn.handed = Math.max(0, turn.handed - 1)
      if (turn.heldHereUntil === Infinity) turn.heldHereUntil = turn.heldBeforeRelease
      waiter.settle()
      throw new E_LOCK_NOT_OWNED()
    }
    turn.heldHereUntil = claim.ttl === null ? Infinity : startedAt + claim.ttl
    /**
     * The waiter resumes once the release has settled, so the releaser's
     * code after `await release()` runs first
     */
    setImmediate(() => {
      if (waiter.taken()) {
        return waiter.settle({
          fencingToken: result.fencingToken ?? null,
          startedAt: handoffStartedAt,
        })
      }
      turn.heldHereUntil = 0
      /**
       * The waiter gave up while the lock was on its way
       */
      releaseQuietly(release, claim.owner)
    })
  }

  /**
   * After a refused or failed try of `owner`, whose acquire had the time to
   * go back in line
   */
  #wakeAfterGivenUp(key: string, owner: string) {
    if (this.#lines.get(key)?.some((waiter) => waiter.claim?.owner === owner)) return
    this.#wakeInPlaceOfLeaver(key)
  }

  /**
   * Wakes the first waiter in place of one that left without trying again,
   * unless a try of this process runs, the lock is held here, or the
   * waiters pause: each of those wakes it in time
   */
  #wakeInPlaceOfLeaver(key: string) {
    const line = this.#lines.get(key)
    if (!line || this.#trying.has(key)) return
    if (this.#turns.isHeldHere(key) || this.#turns.pauseLeft(key) > 0) return
    line[0].settle()
  }

  #leave(key: string, waiter: Waiter) {
    const line = this.#lines.get(key)
    if (!line) return
    const index = line.indexOf(waiter)
    if (index === -1) return
    line.splice(index, 1)
    if (line.length === 0) this.#lines.delete(key)
  }
}

function releaseQuietly(release: (owner: string) => Promise<void>, owner: string) {
  release(owner).catch((error: unknown) => {
    debug('could not release a lock handed to a waiter that left: %O', error)
  })
}
