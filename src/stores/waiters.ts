import { E_LOCK_NOT_OWNED } from '../errors.ts'
import debug from '../debug.ts'
import { DEFAULT_RETRY } from '../options.ts'
import type { AcquireResult, Handoff, LockClaim } from '../types.ts'

/**
 * How long a run of hand-overs between waiters of this process lasts,
 * before a release goes out to every process and the waiters here stand
 * back for `standBack` ms, so that a waiter of another process, which no
 * hand-over wakes, takes the lock first. When none did, this process takes
 * it back, and the next run is twice as long (up to `maxRun`): a process
 * alone on a key stands back ever more rarely.
 */
interface RunPolicy {
  firstRun: number
  maxRun: number
  standBack: number
  /**
   * How much of the run is spent, in the unit of `firstRun`
   */
  spent(streak: Streak, now: number): number
}

/**
 * Where the store's release message wakes the waiters of other processes,
 * runs are counted in hand-overs, and a short stand-back lets the woken
 * waiter in
 */
const COUNTED_RUNS: RunPolicy = {
  firstRun: 16,
  maxRun: 256,
  standBack: 10,
  spent: (streak) => streak.handed,
}

/**
 * Where the waiters of other processes poll, they find the lock free only
 * while the waiters here stand back, so runs are counted in time, whatever
 * the length of the critical sections, and the stand-back is the default
 * retry delay, in which every waiter elsewhere with that delay polls at
 * least once. The next run doubles only when the first waiter here then
 * finds the lock still free (nobody else wanted it): a process alone on a
 * key leaves it unused for a tenth of the time. When another process took
 * it, the next run is a first run again, so that busy processes take turns
 * of a quarter second.
 */
const TIMED_RUNS: RunPolicy = {
  firstRun: DEFAULT_RETRY.delay,
  maxRun: 2500,
  standBack: DEFAULT_RETRY.delay,
  spent: (streak, now) => now - streak.startedAt,
}

/**
 * After a stand-back where others poll, the first waiter here tries this
 * long before any other waiter here may
 */
const PROBE_HEAD_START = 10

/**
 * A waiter being handed the lock stops waiting on its own timer; should
 * the store call never answer, it gives up this long after its timer.
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
   * Taken out of line to be handed the lock. Only the first of a line is
   * taken, and a line holds waiting waiters alone: settling leaves it.
   */
  take(): void
  /**
   * Whether it still waits for the hand-over it was taken for
   */
  taken(): boolean
}

/**
 * The run of hand-overs of a key since its last release to every process
 */
interface Streak {
  handed: number
  /**
   * When the first hand-over of the run was made
   */
  startedAt: number
  /**
   * The length of the run, in the unit of its RunPolicy
   */
  limit: number
  /**
   * Until when the waiters here stand back, after a release to every
   * process
   */
  standBackUntil: number
  /**
   * The release message of that release has not come back yet
   */
  releasedToAll: boolean
  /**
   * They stood back, and no release of another process came since
   */
  stoodBack: boolean
  /**
   * Until when the last hand-over's owner holds the lock, as far as we
   * know: its release here ends it sooner, 0 when nobody here holds it.
   * Its expiry ends it too, should it never be released here (a process
   * crashed, or another one force-released it).
   */
  heldHereUntil: number
  /**
   * Where others poll: the owner of the waiter that tries first after a
   * stand-back, until a refused try of its shows another process took
   * the lock
   */
  prober?: string
}

/**
 * Keys whose runs of hand-overs are tracked, at most: a run ends with a
 * release message of another process, so this only bounds keys whose last
 * holder let its lock expire
 */
const MAX_TRACKED_KEYS = 1000

/**
 * The waiters of this process, by key, in the order their acquires
 * started. A release message wakes the first waiter of its key; a release
 * made here may instead hand the lock straight to that waiter
 * (`handOver`), in the one store call that frees it: the waiter holds the
 * lock without a try of its own, and nobody polls. Shared by the stores
 * that wake waiters on release.
 */
export class Waiters {
  #lines = new Map<string, Waiter[]>()
  /**
   * Tries of this process in progress, by key
   */
  #trying = new Map<string, number>()
  #streaks = new Map<string, Streak>()
  #othersPoll: boolean
  #runs: RunPolicy

  /**
   * `othersPoll`: no release message of this process reaches the waiters
   * of other processes (TIMED_RUNS)
   */
  constructor(options: { othersPoll?: boolean } = {}) {
    this.#othersPoll = options.othersPoll ?? false
    this.#runs = this.#othersPoll ? TIMED_RUNS : COUNTED_RUNS
  }

  /**
   * Resolves when woken (undefined), after `ms` (undefined), when a release
   * of this process handed the lock to `claim` (the hand-over), or rejects
   * with the signal's reason
   */
  wait(
    key: string,
    ms: number,
    signal?: AbortSignal,
    claim?: WaiterClaim
  ): Promise<Handoff | undefined> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    this.#noteRefusedProbe(key, claim)
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
       * It leaves without a try to come: those behind it may have joined
       * without a try of their own, and nothing else wakes them before
       * their retry delay
       */
      if (wasFirst) this.#wakeInPlaceOfLeaver(key)
    }
    const waiter: Waiter = {
      claim,
      since: claim?.waitingSince ?? Date.now(),
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
        timer = setTimeout(() => waiter.settle(), HANDOVER_GRACE)
        return
      }
      /**
       * A poll during a stand-back would take back the lock left to
       * other processes: it waits for the stand-back's end. Where others
       * poll, the first waiter tries then (wakeFirst), and the rest spread
       * their tries over the next delay, so that one of them soon finds
       * the lock when another process's run ends, and none beats the
       * first's try, which tells whether another process took the lock.
       */
      const standingBack = (this.#streaks.get(key)?.standBackUntil ?? 0) - Date.now()
      if (standingBack <= 0) return waiter.settle()
      const behindFirst = this.#othersPoll && this.#lines.get(key)?.[0] !== waiter
      const spread = behindFirst ? PROBE_HEAD_START + Math.random() * ms : 0
      timer = setTimeout(onTimer, standingBack + spread)
    }
    timer = setTimeout(onTimer, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, { once: true })
    let line = this.#lines.get(key)
    if (!line) {
      line = []
      this.#lines.set(key, line)
    }
    /**
     * In order of the acquires' start: a waiter back after a failed try
     * takes its place again, ahead of those that came after it
     */
    let index = line.length
    while (index > 0 && line[index - 1].since > waiter.since) index--
    line.splice(index, 0, waiter)
    return promise
  }

  /**
   * Whether waiters stand in line for the key, are trying it, or one of
   * them was handed the lock and has not released it yet: a newcomer then
   * joins the line
   */
  has(key: string): boolean {
    return this.#lines.has(key) || this.#trying.has(key) || this.#isHeldHere(this.#streaks.get(key))
  }

  /**
   * A lock of the key was extended, to expire at `until` at the earliest.
   * A lock handed over here is then held here until then, not only until
   * its first ttl ran out: newcomers keep joining the line rather than
   * spend a refused try.
   */
  extended(key: string, until: number) {
    const streak = this.#streaks.get(key)
    if (streak && this.#isHeldHere(streak)) streak.heldHereUntil = until
  }

  /**
   * Counts `owner`'s try of the key as standing in line while the store
   * call runs. A waiter between two tries, or whose first try was refused
   * and which reads the holder's time left, is not in line, and a newcomer
   * would take the lock freed meanwhile ahead of it. A try that did not
   * take the lock, and whose acquire then gave up rather than wait, wakes
   * the first waiter, which may have joined the line behind it and would
   * otherwise sleep its whole retry delay without a try of its own.
   */
  trying(key: string, owner: string, attempt: Promise<AcquireResult>): Promise<AcquireResult> {
    this.#trying.set(key, (this.#trying.get(key) ?? 0) + 1)
    const ended = (acquired: boolean) => {
      const left = this.#trying.get(key)! - 1
      if (left === 0) this.#trying.delete(key)
      else this.#trying.set(key, left)
      if (!acquired) setImmediate(() => this.#wakeBehindGivenUp(key, owner))
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
   * After a refused or failed try of `owner`, whose acquire had the time to
   * go back in line
   */
  #wakeBehindGivenUp(key: string, owner: string) {
    if (this.#lines.get(key)?.some((waiter) => waiter.claim?.owner === owner)) return
    this.#wakeInPlaceOfLeaver(key)
  }

  /**
   * Wakes the first waiter of the key to try in place of one that left
   * without trying again, unless a try of this process runs, the lock is
   * held here, or the waiters stand back: each of those wakes it in time
   */
  #wakeInPlaceOfLeaver(key: string) {
    const line = this.#lines.get(key)
    if (!line || this.#trying.has(key)) return
    const streak = this.#streaks.get(key)
    if (this.#isHeldHere(streak) || (streak?.standBackUntil ?? 0) > Date.now()) return
    line[0].settle()
  }

  /**
   * On a release message: wakes the first waiter of the key, or, when this
   * process just released the key to every process to let others in, lets
   * them try first. False when nobody waits for the key here.
   */
  wakeFirst(key: string): boolean {
    const streak = this.#streaks.get(key)
    const now = Date.now()
    if (streak?.releasedToAll && this.#othersPoll) {
      /**
       * Called once the release is done, which is when other processes
       * can find the lock free: the stand-back counts from here, however
       * long the release took
       */
      streak.standBackUntil = now + this.#runs.standBack
    }
    if (streak?.releasedToAll && streak.standBackUntil > now) {
      const delay = streak.standBackUntil - now
      streak.releasedToAll = false
      streak.stoodBack = true
      if (!this.#lines.has(key)) return false
      setTimeout(() => {
        const first = this.#lines.get(key)?.[0]
        if (this.#othersPoll) streak.prober = first?.claim?.owner
        first?.settle()
      }, delay)
      return true
    }
    this.#streaks.delete(key)
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
   * Releases by handing the lock to the first waiter of the key, when it
   * claimed it through `store` and the run of hand-overs is not over
   * (RunPolicy). `transfer` moves the lock from the releaser to
   * the claim's owner in one store call, owner-checked; `release` frees it
   * for an owner that gave up on it meanwhile. Returns false, having done
   * nothing, when the caller must release as usual.
   */
  handOver(
    key: string,
    store: object,
    transfer: (claim: LockClaim) => Promise<AcquireResult>,
    release: (owner: string) => Promise<void>
  ): false | Promise<void> {
    const held = this.#streaks.get(key)
    if (held) held.heldHereUntil = 0
    const first = this.#lines.get(key)?.[0]
    if (!first?.claim || first.claim.store !== store) return false
    const streak = this.#streak(key)
    if (streak.stoodBack) {
      streak.stoodBack = false
      streak.limit = Math.min(2 * streak.limit, this.#runs.maxRun)
    }
    streak.prober = undefined
    const now = Date.now()
    if (streak.handed === 0) streak.startedAt = now
    if (this.#runs.spent(streak, now) >= streak.limit) {
      streak.handed = 0
      streak.standBackUntil = now + this.#runs.standBack
      streak.releasedToAll = true
      return false
    }
    first.take()
    streak.handed++
    this.#leave(key, first)
    return this.#handOverTo(first, streak, transfer, release)
  }

  /**
   * The first waiter after a stand-back is back in line: its try was
   * refused, so another process took the lock, and wants it
   */
  #noteRefusedProbe(key: string, claim: WaiterClaim | undefined) {
    const streak = this.#streaks.get(key)
    if (!claim || streak?.prober !== claim.owner) return
    streak.prober = undefined
    streak.stoodBack = false
    streak.limit = this.#runs.firstRun
  }

  #streak(key: string): Streak {
    let streak = this.#streaks.get(key)
    if (!streak) {
      streak = {
        handed: 0,
        startedAt: 0,
        limit: this.#runs.firstRun,
        standBackUntil: 0,
        releasedToAll: false,
        stoodBack: false,
        heldHereUntil: 0,
      }
      this.#streaks.set(key, streak)
      if (this.#streaks.size > MAX_TRACKED_KEYS) {
        this.#streaks.delete(this.#streaks.keys().next().value!)
      }
    }
    return streak
  }

  async #handOverTo(
    waiter: Waiter,
    streak: Streak,
    transfer: (claim: LockClaim) => Promise<AcquireResult>,
    release: (owner: string) => Promise<void>
  ): Promise<void> {
    const claim = waiter.claim!
    const startedAt = Date.now()
    /**
     * Held here all along, by the releaser, then by the waiter: a
     * newcomer meanwhile joins the line rather than spend a refused try
     */
    streak.heldHereUntil = Infinity
    let result: AcquireResult
    try {
      result = await transfer(claim)
    } catch (error) {
      streak.heldHereUntil = 0
      /**
       * The lock may have moved to the claim's owner before the answer
       * was lost: free it, and let the waiter try on its own
       */
      waiter.settle()
      releaseQuietly(release, claim.owner)
      throw error
    }
    if (!result.acquired) {
      streak.heldHereUntil = 0
      waiter.settle()
      throw new E_LOCK_NOT_OWNED()
    }
    if (waiter.taken()) {
      streak.heldHereUntil = claim.ttl === null ? Infinity : startedAt + claim.ttl
      return waiter.settle({ fencingToken: result.fencingToken ?? null, startedAt })
    }
    streak.heldHereUntil = 0
    /**
     * The waiter gave up while the lock was on its way
     */
    releaseQuietly(release, claim.owner)
  }

  #isHeldHere(streak: Streak | undefined): boolean {
    return streak !== undefined && streak.heldHereUntil > Date.now()
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
