import { E_LOCK_LOST, E_LOCK_NOT_OWNED } from './errors.ts'

/**
 * What the watchdog needs of its lock
 */
export interface WatchedLock {
  readonly key: string
  extend(): Promise<void>
  getRemainingTime(): number | null
}

/**
 * With `autoExtend`: extends the lock every ttl/3 until stopped. When an
 * extension is refused, or none succeeds before the lock's local expiry
 * (the store failing or stalling), `signal` aborts with E_LOCK_LOST.
 */
export class Watchdog {
  readonly #controller = new AbortController()
  #tickTimer: NodeJS.Timeout | undefined
  #expiryTimer: NodeJS.Timeout | undefined
  #stopped = false
  #extending = false
  #lastError: unknown
  #lock: WatchedLock
  #interval: number
  #onLost: (reason: string) => void

  constructor(lock: WatchedLock, ttl: number, onLost: (reason: string) => void) {
    this.#lock = lock
    this.#onLost = onLost
    this.#interval = Math.max(1, ttl / 3)
    this.#armExpiry()
    this.#tickTimer = setTimeout(this.#tick, this.#interval)
  }

  /**
   * Aborted with E_LOCK_LOST once the lock is found lost
   */
  get signal(): AbortSignal {
    return this.#controller.signal
  }

  /**
   * Stops extending; false when it was stopped already
   */
  stop(): boolean {
    if (this.#stopped) return false
    this.#stopped = true
    clearTimeout(this.#tickTimer)
    clearTimeout(this.#expiryTimer)
    return true
  }

  /**
   * Extends again after `stop()`, with the same signal
   */
  resume() {
    if (!this.#stopped || this.#controller.signal.aborted) return
    this.#stopped = false
    this.#armExpiry()
    /**
     * An extension still in progress schedules the next one itself
     */
    if (!this.#extending) this.#tickTimer = setTimeout(this.#tick, this.#interval)
  }

  /**
   * Stops and aborts the signal: the lock was lost
   */
  lose(reason: string, cause?: unknown) {
    if (this.#stopped) return
    this.stop()
    this.#onLost(reason)
    this.#controller.abort(
      new E_LOCK_LOST(`Lock "${this.#lock.key}" was lost: ${reason}`, { cause })
    )
  }

  #tick = async () => {
    this.#extending = true
    try {
      await this.#lock.extend()
      if (this.#stopped) return
      this.#lastError = undefined
      this.#armExpiry()
    } catch (error) {
      if (this.#stopped) return
      if (error instanceof E_LOCK_NOT_OWNED) return this.lose(errorMessage(error), error)
      this.#lastError = error
    } finally {
      this.#extending = false
    }
    this.#tickTimer = setTimeout(this.#tick, this.#interval)
  }

  /**
   * A stalled store never fails the extension: the expiry timer is what
   * notices that the lock may be gone
   */
  #armExpiry() {
    clearTimeout(this.#expiryTimer)
    this.#expiryTimer = setTimeout(() => {
      const lastError = this.#lastError
      this.lose(
        lastError === undefined
          ? 'no extension was confirmed before it expired'
          : `extending failed until it expired: ${errorMessage(lastError)}`,
        lastError
      )
    }, this.#lock.getRemainingTime() ?? 0)
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
