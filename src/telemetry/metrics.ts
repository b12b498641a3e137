import {
  createNoopMeter,
  metrics,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
} from '@opentelemetry/api'

/*
 * The instruments of the lock metrics, made on the meter provider the
 * application registered (see docs/telemetry.md)
 */

export const SCOPE = 'adonis-lock'

/**
 * How many distinct key prefixes get their own metric series; later ones
 * are counted under OTHER_PREFIX, so a key scheme without a fixed first
 * segment cannot grow the series without bound
 */
export const MAX_METRIC_PREFIXES = 50
export const OTHER_PREFIX = '_other'

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

const NO_METER = createNoopMeter()

export interface Instruments {
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
export function currentInstruments(): Instruments | undefined {
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
export function metricPrefix(recorder: Instruments, prefix: string): string {
  if (recorder.prefixes.has(prefix)) return prefix
  if (recorder.prefixes.size >= MAX_METRIC_PREFIXES) return OTHER_PREFIX
  recorder.prefixes.add(prefix)
  return prefix
}
