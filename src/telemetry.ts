import {
  context,
  createNoopMeter,
  metrics,
  ProxyTracerProvider,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Span,
} from '@opentelemetry/api'
import { E_LOCK_NOT_OWNED } from './errors.ts'

/**
 * OpenTelemetry through `@opentelemetry/api` only: spans and metrics are
 * recorded once the application registers an SDK (as `@adonisjs/otel`
 * does), and cost two lookups per acquire until then. Names and
 * attributes are listed in docs/telemetry.md.
 */

const SCOPE = 'adonis-lock'

/**
 * How many distinct key prefixes get their own metric series; later ones
 * are counted under OTHER_PREFIX, so a key scheme without a fixed first
 * segment cannot grow the series without bound
 */
export const MAX_METRIC_PREFIXES = 50
export const OTHER_PREFIX = '_other'

export type AcquireFailure = 'attempts' | 'timeout' | 'aborted' | 'error'
export type AcquireOutcome = 'acquired' | 'refused' | 'timed_out' | 'aborted' | 'error'

const OUTCOMES: Record<AcquireFailure, AcquireOutcome> = {
  attempts: 'refused',
  timeout: 'timed_out',
  aborted: 'aborted',
  error: 'error',
}

/**
 * What is recorded of a key: its first segment, up to the first `:` or
 * `.` (`order.processing.42` → `order`, `user:42:avatar` → `user`), the
 * whole key when it has none. Keys often carry ids; their kind is what a
 * trace or a dashboard needs.
 */
export function keyPrefix(key: string): string {
  const end = key.search(/[:.]/)
  return end === -1 ? key : key.slice(0, end)
}

/**
 * The tracer provider's delegate when no SDK is registered: a fresh proxy
 * has no delegate and answers with the API's no-op provider
 */
const NO_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate()
const NO_METER = createNoopMeter()

function tracing(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_TRACER_PROVIDER
}

interface Instruments {
  waits: Histogram
  holds: Histogram
  extensions: Counter
  losses: Counter
  prefixes: Set<string>
}

/**
 * Seconds, from sub-millisecond uncontended acquires to long waits
 */
const DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
]

let instrumentsOf: MeterProvider | undefined
let instruments: Instruments | undefined

/**
 * The instruments of the registered meter provider, made again when the
 * application registers another one (the metrics API has no proxy)
 */
function currentInstruments(): Instruments | undefined {
  const provider = metrics.getMeterProvider()
  if (provider === instrumentsOf) return instruments
  instrumentsOf = provider
  const meter = provider.getMeter(SCOPE)
  instruments = meter === NO_METER ? undefined : createInstruments(meter)
  return instruments
}

function createInstruments(meter: Meter): Instruments {
  return {
    waits: meter.createHistogram('lock.acquire.duration', {
      description: 'Time an acquire() waited, by outcome',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
    holds: meter.createHistogram('lock.hold.duration', {
      description: 'Time a lock was held, from acquired to release',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
    extensions: meter.createCounter('lock.extensions', {
      description: 'Extensions of held locks (extend() and autoExtend)',
      unit: '{extension}',
    }),
    losses: meter.createCounter('lock.losses', {
      description: 'Locks found lost while held: expired or taken over',
      unit: '{loss}',
    }),
    prefixes: new Set(),
  }
}

/**
 * The key prefix as a metric attribute, bounded by MAX_METRIC_PREFIXES
 */
function metricPrefix(recorder: Instruments, prefix: string): string {
  if (recorder.prefixes.has(prefix)) return prefix
  if (recorder.prefixes.size >= MAX_METRIC_PREFIXES) return OTHER_PREFIX
  recorder.prefixes.add(prefix)
  return prefix
}

/**
 * The lock being acquired: a semaphore has a `limit`
 */
export interface TelemetryLock {
  readonly key: string
  readonly limit?: number
}

/**
 * Starts recording one acquire(): a `lock.acquire` span under the active
 * span, and the wait time. Undefined when no SDK is registered.
 */
export function acquireStarted(lock: TelemetryLock, store: string): AcquireTelemetry | undefined {
  const recorder = currentInstruments()
  if (!recorder && !tracing()) return undefined
  return new AcquireTelemetry(lock, store, recorder)
}

export class AcquireTelemetry {
  #parent: Context
  #span: Span
  #startedAt = performance.now()
  #recorder?: Instruments
  #attributes: Attributes

  constructor(lock: TelemetryLock, store: string, recorder?: Instruments) {
    const prefix = keyPrefix(lock.key)
    const semaphore = lock.limit !== undefined
    this.#recorder = recorder
    this.#parent = context.active()
    this.#attributes = {
      'lock.store': store,
      'lock.type': semaphore ? 'semaphore' : 'lock',
      'lock.key.prefix': recorder ? metricPrefix(recorder, prefix) : prefix,
    }
    this.#span = trace.getTracer(SCOPE).startSpan(
      'lock.acquire',
      {
        attributes: {
          'lock.store': store,
          'lock.type': semaphore ? 'semaphore' : 'lock',
          'lock.key.prefix': prefix,
          ...(semaphore ? { 'lock.semaphore.limit': lock.limit } : {}),
        },
      },
      this.#parent
    )
  }

  acquired(fencingToken: number | null, attempts: number): HoldTelemetry {
    this.#end('acquired', attempts, fencingToken)
    return new HoldTelemetry(this.#parent, this.#attributes, this.#recorder)
  }

  refused(attempts: number) {
    this.#end('refused', attempts)
  }

  timedOut(attempts: number) {
    this.#end('timed_out', attempts)
  }

  aborted(attempts: number) {
    this.#end('aborted', attempts)
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
      ...this.#attributes,
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
  #attributes: Attributes
  #ended = false
  #lost = false

  constructor(parent: Context, attributes: Attributes, recorder?: Instruments) {
    this.#recorder = recorder
    this.#attributes = attributes
    if (tracing()) {
      this.#span = trace.getTracer(SCOPE).startSpan('lock.hold', { attributes }, parent)
    }
  }

  extended(ttl: number) {
    if (this.#ended) return
    this.#span?.addEvent('lock.extended', { 'lock.ttl': ttl / 1000 })
    this.#recorder?.extensions.add(1, this.#attributes)
  }

  /**
   * Found lost while held (the watchdog, or a release that no longer
   * owned the lock): counted once
   */
  lost(reason: string) {
    if (this.#lost) return
    this.#lost = true
    this.#recorder?.losses.add(1, this.#attributes)
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
    this.#recorder?.holds.record(held, this.#attributes)
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
