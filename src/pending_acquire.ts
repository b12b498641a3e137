import { E_LOCK_STORAGE_ERROR } from './errors.ts'
import type { AcquireReport, LockReporter } from './reporting.ts'
import type { AcquireTelemetry } from './telemetry/spans.ts'
import { arrivalAt, nextWait } from './waiting/main.ts'
import type { AcquireResult, ResolvedRetryOptions } from './types.ts'

/**
 * One call of `acquire()` in progress: the owner it takes the lock as, its
 * tries so far, when it gives up, and the report of how it ended
 */
export class PendingAcquire implements AcquireReport {
  readonly startedAt = performance.now()
  readonly telemetry: AcquireTelemetry | undefined
  readonly owner: string
  readonly signal: AbortSignal | undefined
  /**
   * `performance.now()` past which no try starts; Infinity without timeout
   */
  readonly deadline: number
  /**
   * Its place in this process's line: the order of the acquire calls
   */
  readonly arrival: number
  attempts = 0
  readonly #reporter: LockReporter
  readonly #maxAttempts: number
  readonly #delay: number

  constructor(
    reporter: LockReporter,
    owner: string,
    retry: ResolvedRetryOptions,
    signal: AbortSignal | undefined
  ) {
    const startedAt = this.startedAt
    this.#reporter = reporter
    this.telemetry = reporter.acquireStarted(startedAt)
    this.owner = owner
    this.signal = signal
    this.arrival = arrivalAt(startedAt)
    this.deadline = retry.timeout === null ? Infinity : startedAt + retry.timeout
    this.#maxAttempts = retry.attempts === null ? Infinity : Math.max(1, retry.attempts)
    this.#delay = retry.delay
  }

  /**
   * More than one try is allowed, so it may wait
   */
  get mayWait(): boolean {
    return this.#maxAttempts > 1
  }

  /**
   * Before the first try, behind the waiters of this process: one delay,
   * within the timeout
   */
  firstWait(): number {
    return Math.max(1, Math.min(this.#delay, this.deadline - this.startedAt))
  }

  /**
   * After a refused try: whether the tries or the time ran out (the
   * failure is reported then)
   */
  gaveUp(now: number): boolean {
    if (this.attempts < this.#maxAttempts && now < this.deadline) return false
    const reason = this.attempts >= this.#maxAttempts ? 'attempts' : 'timeout'
    this.#reporter.failed(this, this.attempts, reason)
    return true
  }

  /**
   * After a refused try: how long to wait before the next one
   */
  nextWait(refused: AcquireResult, now: number): number {
    return nextWait(this.#delay, refused, this.deadline - now)
  }

  acquired(fencingToken: number | null) {
    this.#reporter.acquired(this, this.attempts, fencingToken)
  }

  /**
   * Reports a wait that failed: aborted by the signal, or an error
   */
  failed(error: unknown) {
    const reason = this.signal?.aborted ? 'aborted' : 'error'
    this.#reporter.failed(this, this.attempts, reason, error)
  }

  /**
   * Reports a try that failed; the error to throw is the signal's reason
   * or E_LOCK_STORAGE_ERROR
   */
  failedTry(error: unknown, action: string): unknown {
    this.failed(error)
    if (this.signal?.aborted && error === this.signal.reason) return error
    return E_LOCK_STORAGE_ERROR.wrap(error, action)
  }
}
