import {
  acquireStarted,
  type AcquireFailure,
  type AcquireTelemetry,
  type HoldTelemetry,
  type TelemetryLock,
} from './telemetry/spans.ts'
import type { LockEvents, ResolvedLockOptions } from './types.ts'

type ReportedLock = TelemetryLock & { getOwner(): string }

/**
 * One acquire: when it started (monotonic clock, for `waited`) and its
 * telemetry, if any
 */
export interface AcquireReport {
  readonly startedAt: number
  readonly telemetry?: AcquireTelemetry
}

/**
 * The one place that says what happened to a lock: events on the emitter,
 * debug or warning logs, and OpenTelemetry spans and metrics. Each method
 * is one moment of a lock's life.
 */
export class LockReporter {
  #lock: ReportedLock
  #options: ResolvedLockOptions
  #hold?: HoldTelemetry

  constructor(lock: ReportedLock, options: ResolvedLockOptions) {
    this.#lock = lock
    this.#options = options
  }

  /**
   * An acquire begins at `startedAt`: its span, kept by the acquire itself
   * since acquires of one object may overlap
   */
  acquireStarted(startedAt: number): AcquireTelemetry | undefined {
    if (!this.#options.telemetry) return undefined
    return acquireStarted(this.#lock, this.#options.storeName, startedAt)
  }

  acquired(report: AcquireReport, attempts: number, fencingToken: number | null) {
    /**
     * A hold not released by now ran out of its ttl
     */
    this.#hold?.lost('a newer acquisition of this lock took its place')
    this.#hold = report.telemetry?.acquired(fencingToken, attempts)
    if (!this.#reports('lock:acquired')) return
    this.#emit('lock:acquired', { ...this.#acquireEnd(report, attempts), fencingToken })
  }

  failed(report: AcquireReport, attempts: number, reason: AcquireFailure, error?: unknown) {
    report.telemetry?.ended(reason, attempts, error)
    if (!this.#reports('lock:failed')) return
    this.#emit('lock:failed', { ...this.#acquireEnd(report, attempts), reason })
  }

  /**
   * A release or force release begins: it ends the hold there is now, even
   * when the store answers after a newer acquisition of this object began
   */
  releasing(): HoldTelemetry | undefined {
    const hold = this.#hold
    this.#hold = undefined
    return hold
  }

  released(hold: HoldTelemetry | undefined) {
    hold?.released()
    if (this.#reports('lock:released')) this.#emit('lock:released', this.#base())
  }

  /**
   * A release or force release the store refused or failed: the hold ends
   */
  releaseRefused(hold: HoldTelemetry | undefined, error: unknown) {
    hold?.released(error)
  }

  extended(ttl: number) {
    this.#hold?.extended(ttl)
    if (this.#reports('lock:extended')) this.#emit('lock:extended', { ...this.#base(), ttl })
  }

  lost(reason: string) {
    this.#hold?.lost(reason)
    this.#hold = undefined
    this.#options.logger?.warn({ ...this.#base(), reason }, 'adonis-lock: lock lost')
    if (this.#reports('lock:lost')) this.#emit('lock:lost', { ...this.#base(), reason })
  }

  /**
   * The release after `run()` failed for another reason than ownership
   */
  releaseFailed(error: unknown) {
    this.#options.logger?.warn(
      { key: this.#lock.key, store: this.#options.storeName, err: error },
      'adonis-lock: releasing the lock failed; it will expire after its ttl'
    )
  }

  /**
   * A try given up on took the lock, and releasing it failed
   */
  lateReleaseFailed(error: unknown) {
    this.#options.logger?.warn(
      { ...this.#base(), err: error },
      'adonis-lock: could not release a lock taken after its acquire gave up; it will expire after its ttl'
    )
  }

  /**
   * What both ends of an acquire report: the lock, its wait and tries
   */
  #acquireEnd(report: AcquireReport, attempts: number) {
    return { ...this.#base(), waited: Math.round(performance.now() - report.startedAt), attempts }
  }

  #base() {
    return { key: this.#lock.key, store: this.#options.storeName, owner: this.#lock.getOwner() }
  }

  /**
   * Whether the event has listeners or debug logs are on: payloads are
   * built only then
   */
  #reports(event: keyof LockEvents): boolean {
    return (
      (this.#options.listened?.(event) ?? false) ||
      (this.#options.logger?.isLevelEnabled?.('debug') ?? false)
    )
  }

  #emit<K extends keyof LockEvents>(event: K, data: LockEvents[K]) {
    const { emitter, logger, listened } = this.#options
    if (logger?.isLevelEnabled?.('debug')) logger.debug(data, event)
    if (listened?.(event)) emitter!.emit(event, data)
  }
}
