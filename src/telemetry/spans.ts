import {
  context,
  ProxyTracerProvider,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api'
import { E_LOCK_NOT_OWNED } from '../errors.ts'
import type { LockFailedEvent } from '../types.ts'
import { currentInstruments, keyPrefix, metricPrefix, SCOPE, type Instruments } from './metrics.ts'

/*
 * OpenTelemetry through `@opentelemetry/api` only: spans and metrics are
 * recorded once the application registers an SDK (as `@adonisjs/otel`
 * does). Names and attributes are listed in docs/telemetry.md.
 */

export type AcquireFailure = LockFailedEvent['reason']
export type AcquireOutcome = 'acquired' | 'refused' | 'timed_out' | 'aborted' | 'error'

const OUTCOMES: Record<AcquireFailure, AcquireOutcome> = {
  attempts: 'refused',
  timeout: 'timed_out',
  aborted: 'aborted',
  error: 'error',
}

/**
 * The tracer provider's delegate when no SDK is registered: a fresh proxy
 * has no delegate and answers with the API's no-op provider. The API marks
 * ProxyTracerProvider deprecated (for its next major); tests/telemetry.spec.ts
 * pins what this relies on.
 */
const NO_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate()

function tracing(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_TRACER_PROVIDER
}

/**
 * The lock being acquired: a semaphore has a `limit`
 */
export interface TelemetryLock {
  readonly key: string
  readonly limit?: number
}

/**
 * While no SDK is registered, the providers are looked up again at most
 * once per this many ms: the two global lookups cost ~2 % of an
 * uncontended memory acquire + release (docs/telemetry.md)
 */
export const SDK_RECHECK_MS = 1

let noSdkUntil = -Infinity

/**
 * Starts recording one acquire(): a `lock.acquire` span under the active
 * span, and the wait time. Undefined when no SDK is registered. `now` is
 * the acquire's start on the monotonic clock.
 */
export function acquireStarted(
  lock: TelemetryLock,
  store: string,
  now = performance.now()
): AcquireTelemetry | undefined {
  if (now < noSdkUntil) return undefined
  const recorder = currentInstruments()
  if (!recorder && !tracing()) {
    noSdkUntil = now + SDK_RECHECK_MS
    return undefined
  }
  return new AcquireTelemetry(lock, store, now, recorder)
}

export class AcquireTelemetry {
  #parent: Context
  #span: Span
  #startedAt: number
  #recorder?: Instruments
  #attributes: Attributes
  #metricAttributes: Attributes

  /**
   * `startedAt`: the acquire's start, as its `lock:acquired` event counts
   * `waited` from
   */
  constructor(lock: TelemetryLock, store: string, startedAt: number, recorder?: Instruments) {
    this.#startedAt = startedAt
    const prefix = keyPrefix(lock.key)
    const type = lock.limit === undefined ? 'lock' : 'semaphore'
    this.#recorder = recorder
    this.#parent = context.active()
    this.#attributes = { 'lock.store': store, 'lock.type': type, 'lock.key.prefix': prefix }
    this.#metricAttributes = recorder
      ? { ...this.#attributes, 'lock.key.prefix': metricPrefix(recorder, prefix) }
      : this.#attributes
    const attributes =
      lock.limit === undefined
        ? this.#attributes
        : { ...this.#attributes, 'lock.semaphore.limit': lock.limit }
    this.#span = trace.getTracer(SCOPE).startSpan('lock.acquire', { attributes }, this.#parent)
  }

  acquired(fencingToken: number | null, attempts: number): HoldTelemetry {
    this.#end('acquired', attempts, fencingToken)
    return new HoldTelemetry(this.#parent, this.#attributes, this.#metricAttributes, this.#recorder)
  }

  /**
   * A storage error, recorded on the span with the store's own error
   */
  failed(attempts: number, error: unknown) {
    this.#span.recordException(asException(error))
    this.#span.setStatus({ code: SpanStatusCode.ERROR, message: errorType(error) })
    this.#end('error', attempts, null, errorType(error))
  }

  /**
   * One call for the lock's failure reasons
   */
  ended(reason: AcquireFailure, attempts: number, error?: unknown) {
    if (reason === 'error') return this.failed(attempts, error)
    this.#end(OUTCOMES[reason], attempts)
  }

  #end(
    outcome: AcquireOutcome,
    attempts: number,
    fencingToken: number | null = null,
    error?: string
  ) {
    const waited = (performance.now() - this.#startedAt) / 1000
    const span = this.#span
    if (span.isRecording()) {
      span.setAttribute('lock.acquire.outcome', outcome)
      span.setAttribute('lock.acquire.attempts', attempts)
      span.setAttribute('lock.wait.duration', waited)
      if (fencingToken !== null) span.setAttribute('lock.fencing_token', fencingToken)
      if (error) span.setAttribute('error.type', error)
    }
    span.end()
    this.#recorder?.waits.record(waited, {
      ...this.#metricAttributes,
      'lock.acquire.outcome': outcome,
      ...(error ? { 'error.type': error } : {}),
    })
  }
}

/**
 * A held lock: a `lock.hold` span from acquired to release, with
 * extensions and a loss as its events
 */
export class HoldTelemetry {
  #span?: Span
  #startedAt = performance.now()
  #recorder?: Instruments
  #metricAttributes: Attributes
  #ended = false
  #lost = false

  constructor(
    parent: Context,
    attributes: Attributes,
    metricAttributes: Attributes,
    recorder?: Instruments
  ) {
    this.#recorder = recorder
    this.#metricAttributes = metricAttributes
    if (tracing()) {
      this.#span = trace.getTracer(SCOPE).startSpan('lock.hold', { attributes }, parent)
    }
  }

  extended(ttl: number) {
    if (this.#ended) return
    this.#span?.addEvent('lock.extended', { 'lock.ttl': ttl / 1000 })
    this.#recorder?.extensions.add(1, this.#metricAttributes)
  }

  /**
   * Found lost while held (the watchdog, or a release that no longer
   * owned the lock): counted once
   */
  lost(reason: string) {
    if (this.#lost) return
    this.#lost = true
    this.#recorder?.losses.add(1, this.#metricAttributes)
    if (this.#ended) return
    this.#span?.addEvent('lock.lost', { 'lock.lost.reason': reason })
    this.#end('lost')
  }

  /**
   * Called when release() or forceRelease() is asked: the hold ends there,
   * whether the store call then succeeds or not
   */
  released(error?: unknown) {
    if (error instanceof E_LOCK_NOT_OWNED) {
      return this.lost('the lock was no longer owned at release')
    }
    if (this.#ended) return
    if (error !== undefined) {
      this.#span?.recordException(asException(error))
      this.#span?.setStatus({ code: SpanStatusCode.ERROR, message: errorType(error) })
    }
    this.#end(error === undefined ? 'released' : 'error')
  }

  #end(outcome: 'released' | 'lost' | 'error') {
    this.#ended = true
    const held = (performance.now() - this.#startedAt) / 1000
    if (this.#span?.isRecording()) {
      this.#span.setAttribute('lock.hold.outcome', outcome)
      this.#span.setAttribute('lock.hold.duration', held)
    }
    this.#span?.end()
    this.#recorder?.holds.record(held, this.#metricAttributes)
  }
}

/**
 * Marks the active span (the request's, under `@adonisjs/otel`) with the
 * lock middleware's refusal: 400, 409, 422 or 503 and the error code.
 * A 503 also sets the span's status to error; 4xx answers are the
 * client's doing and leave it unset, as the HTTP conventions ask.
 */
export function markRequestRefused(status: number, code: string) {
  const span = trace.getActiveSpan()
  if (!span?.isRecording()) return
  span.setAttribute('lock.refusal.status', status)
  span.setAttribute('lock.refusal.code', code)
  span.addEvent('lock.refused', { 'http.response.status_code': status, 'error.type': code })
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: code })
}

/**
 * The error's code (`ECONNREFUSED`, `E_LOCK_STORAGE_ERROR`) or class name
 */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code) return code
  return error instanceof Error ? error.name : 'unknown'
}

function asException(error: unknown): Error | string {
  return error instanceof Error ? error : String(error)
}
