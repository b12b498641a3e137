import { DEFAULT_RETRY } from '../options.ts'

/**
 * How long this process's turn on a key lasts, and how long its waiters
 * then pause so that a waiter of another process gets the lock. When none
 * took it, the next turn is twice as long (up to `maxTurn`).
 */
interface TurnPolicy {
  firstTurn: number
  maxTurn: number
  pause: number
  /**
   * How much of the turn is used, in the unit of `firstTurn`
   */
  used(turn: Turn, now: number): number
}

/**
 * Other processes are woken by the release message: a turn is counted in
 * hand-overs, and a short pause lets the woken waiter in
 */
const COUNTED_TURNS: TurnPolicy = {
  firstTurn: 16,
  maxTurn: 256,
  pause: 10,
  used: (turn) => turn.handed,
}

/**
 * Other processes poll: they find the lock free only while the waiters
 * here pause, so a turn is counted in time and the pause is one default
 * retry delay, in which each of them polls at least once
 */
const TIMED_TURNS: TurnPolicy = {
  firstTurn: DEFAULT_RETRY.delay,
  maxTurn: 2500,
  pause: DEFAULT_RETRY.delay,
  used: (turn, now) => now - turn.startedAt,
}

/**
 * Keys whose turns are tracked, at most. A turn ends with a release
 * message of another process; this bounds keys whose holder let it expire.
 */
const MAX_TRACKED_KEYS = 1000

/**
 * The hand-overs of a key since it was last released to every process
 */
export interface Turn {
  handed: number
  /**
   * When the first hand-over of the turn was made
   */
  startedAt: number
  /**
   * The length of the turn, in the unit of its policy
   */
  length: number
  pauseUntil: number
  /**
   * Released to every process; its release message has not come back yet
   */
  releasedToAll: boolean
  /**
   * The waiters here paused, and no release of another process came since
   */
  paused: boolean
  /**
   * Until when the owner the lock was last handed to holds it, as far as
   * we know (0: nobody here). Its release or its expiry ends it.
   */
  heldHereUntil: number
  /**
   * `heldHereUntil` when the release in progress began: back to it should
   * the store refuse the release (not the owner)
   */
  heldBeforeRelease: number
  /**
   * Where others poll: the owner of the first waiter to try after a pause,
   * until a refused try of its shows another process took the lock
   */
  firstAfterPause?: string
}

/**
 * The turns of this process on each key, shared fairly with the waiters
 * of other processes
 */
export class Turns {
  readonly othersPoll: boolean
  #policy: TurnPolicy
  #turns = new Map<string, Turn>()

  constructor(othersPoll: boolean) {
    this.othersPoll = othersPoll
    this.#policy = othersPoll ? TIMED_TURNS : COUNTED_TURNS
  }

  /**
   * A lock handed over here and not yet released or expired
   */
  isHeldHere(key: string): boolean {
    return isHeldHere(this.#turns.get(key))
  }

  /**
   * Ms the waiters here still pause for the key (0 or less: none)
   */
  pauseLeft(key: string, now = Date.now()): number {
    return (this.#turns.get(key)?.pauseUntil ?? 0) - now
  }

  /**
   * A lock handed over here was extended: it is held here until `until`
   */
  extended(key: string, until: number) {
    const turn = this.#turns.get(key)
    if (turn && isHeldHere(turn)) turn.heldHereUntil = until
  }

  /**
   * On a release message: the ms the first waiter waits before it tries,
   * when this process just released the key to every process; undefined
   * (and the turn is over) otherwise
   */
  pauseOnRelease(key: string): number | undefined {
    const turn = this.#turns.get(key)
    const now = Date.now()
    /**
     * Where others poll, the pause counts from the end of the release,
     * when they can find the lock free
     */
    if (turn?.releasedToAll && this.othersPoll) turn.pauseUntil = now + this.#policy.pause
    if (turn?.releasedToAll && turn.pauseUntil > now) {
      turn.releasedToAll = false
      turn.paused = true
      return turn.pauseUntil - now
    }
    this.#turns.delete(key)
    return undefined
  }

  /**
   * The first waiter tries after a pause (where others poll)
   */
  triesFirstAfterPause(key: string, owner: string | undefined) {
    const turn = this.#turns.get(key)
    if (turn && this.othersPoll) turn.firstAfterPause = owner
  }

  /**
   * `owner` is back in line: when it was the first to try after a pause,
   * another process took the lock and wants it, and turns shrink again
   */
  backInLine(key: string, owner: string | undefined) {
    const turn = this.#turns.get(key)
    if (owner === undefined || turn?.firstAfterPause !== owner) return
    turn.firstAfterPause = undefined
    turn.paused = false
    turn.length = this.#policy.firstTurn
  }

  /**
   * A release of this process begins: nobody here holds the key after it
   */
  releasing(key: string) {
    const turn = this.#turns.get(key)
    if (!turn) return
    turn.heldBeforeRelease = turn.heldHereUntil
    turn.heldHereUntil = 0
  }

  /**
   * The store refused the release (not the owner): the key is held here as
   * before it began, unless something since said otherwise
   */
  releaseRefused(key: string) {
    const turn = this.#turns.get(key)
    if (turn?.heldHereUntil === 0) turn.heldHereUntil = turn.heldBeforeRelease
  }

  /**
   * The turn to hand the lock over in, or undefined when the turn is over:
   * the key is then released to every process and the waiters here pause
   */
  nextHandOver(key: string): Turn | undefined {
    const turn = this.#turn(key)
    if (turn.paused) {
      turn.paused = false
      turn.length = Math.min(2 * turn.length, this.#policy.maxTurn)
    }
    turn.firstAfterPause = undefined
    const now = Date.now()
    if (turn.handed === 0) turn.startedAt = now
    if (this.#policy.used(turn, now) >= turn.length) {
      turn.handed = 0
      turn.pauseUntil = now + this.#policy.pause
      turn.releasedToAll = true
      return undefined
    }
    turn.handed++
    return turn
  }

  #turn(key: string): Turn {
    let turn = this.#turns.get(key)
    if (!turn) {
      turn = {
        handed: 0,
        startedAt: 0,
        length: this.#policy.firstTurn,
        pauseUntil: 0,
        releasedToAll: false,
        paused: false,
        heldHereUntil: 0,
        heldBeforeRelease: 0,
      }
      this.#turns.set(key, turn)
      if (this.#turns.size > MAX_TRACKED_KEYS) {
        this.#turns.delete(this.#turns.keys().next().value!)
      }
    }
    return turn
  }
}

function isHeldHere(turn: Turn | undefined): boolean {
  return turn !== undefined && turn.heldHereUntil > Date.now()
}
