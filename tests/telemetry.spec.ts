/**
 * OpenTelemetry: the spans and metrics of locks and semaphores, read with
 * the SDK's in-memory span exporter and a metric reader, on the memory
 * store and on a real Redis server
 */
import { test } from '@japa/runner'
import type { TestContext } from '@japa/runner/core'
import { Redis } from 'ioredis'
import { context, metrics, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base'
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics'
import { E_LOCK_STORAGE_ERROR } from '../src/errors.ts'
import { LockFactory } from '../src/lock_factory.ts'
import { LockManager } from '../src/lock_manager.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import { RedisStore } from '../src/stores/main.ts'
import { keyPrefix, MAX_METRIC_PREFIXES, OTHER_PREFIX } from '../src/telemetry/metrics.ts'
import { acquireStarted, markRequestRefused, SDK_RECHECK_MS } from '../src/telemetry/spans.ts'
import type { AcquireResult, LockStore } from '../src/types.ts'
import { sleep } from '../src/wait.ts'
import { SERVICES, serviceAvailable, uniqueKey } from './helpers/services.ts'

const redisAvailable = await serviceAvailable('redis')

class TestMetricReader extends MetricReader {
  protected async onShutdown() {}
  protected async onForceFlush() {}
}

/**
 * Registers an SDK for the test, as an application (or @adonisjs/otel)
 * would, and removes it when the test ends. Acquires see it once
 * SDK_RECHECK_MS have passed since the last acquire that found none.
 */
async function registerSdk(t: TestContext) {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  })
  const reader = new TestMetricReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  trace.setGlobalTracerProvider(tracerProvider)
  metrics.setGlobalMeterProvider(meterProvider)
  const registeredAt = performance.now()
  while (performance.now() - registeredAt <= SDK_RECHECK_MS) await sleep(1)
  t.cleanup(async () => {
    trace.disable()
    metrics.disable()
    context.disable()
    await tracerProvider.shutdown()
    await meterProvider.shutdown()
  })

  return {
    spans: (name?: string): ReadableSpan[] =>
      exporter.getFinishedSpans().filter((span) => name === undefined || span.name === name),
    async metric(name: string): Promise<MetricData | undefined> {
      const { resourceMetrics } = await reader.collect()
      return resourceMetrics.scopeMetrics
        .flatMap((scope) => scope.metrics)
        .find((metric) => metric.descriptor.name === name)
    },
  }
}

type Sdk = Awaited<ReturnType<typeof registerSdk>>

/**
 * The data points of a metric as [attributes, value], value being the
 * count of a histogram or the sum of a counter
 */
async function points(sdk: Sdk, name: string): Promise<Array<[Attributes, number]>> {
  const metric = await sdk.metric(name)
  if (!metric) return []
  return metric.dataPoints.map((point) => [
    point.attributes,
    metric.dataPointType === DataPointType.HISTOGRAM
      ? (point.value as { count: number }).count
      : (point.value as number),
  ])
}

function attributesOf(span: ReadableSpan | undefined): Attributes {
  if (!span) throw new Error('span not recorded')
  return span.attributes
}

/**
 * A store whose every call fails as a backend would
 */
class FailingStore extends MemoryStore {
  async save(): Promise<AcquireResult> {
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
  }
}

interface Backend {
  name: string
  available: boolean
  open(t: TestContext): Promise<LockStore>
  /**
   * A store of the same kind whose backend is unreachable
   */
  broken(t: TestContext): Promise<LockStore>
}

const backends: Backend[] = [
  {
    name: 'memory',
    available: true,
    async open() {
      return new MemoryStore()
    },
    async broken() {
      return new FailingStore()
    },
  },
  {
    name: 'redis',
    available: redisAvailable,
    async open(t) {
      const connection = new Redis(SERVICES.redis)
      const store = new RedisStore({ connection })
      t.cleanup(async () => {
        await store.close?.()
        await connection.quit()
      })
      return store
    },
    async broken(t) {
      /**
       * Port 1 refuses at once; no reconnection and no offline queue, so
       * the command fails instead of waiting for a server
       */
      const connection = new Redis({
        host: '127.0.0.1',
        port: 1,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      })
      const store = new RedisStore({ connection })
      t.cleanup(async () => {
        await store.close?.()
        connection.disconnect()
      })
      return store
    },
  },
]

for (const backend of backends) {
  test.group(`Telemetry | ${backend.name}`, (group) => {
    group.tap((t) => {
      t.skip(!backend.available, `${backend.name} is not reachable on 127.0.0.1`)
    })

    async function setup(t: TestContext, options: { telemetry?: boolean } = {}) {
      const sdk = await registerSdk(t)
      const store = await backend.open(t)
      const locks = new LockFactory(store, {
        storeName: backend.name,
        retry: { delay: 20 },
        ...options,
      })
      return { sdk, locks }
    }

    test('an acquired lock: lock.acquire and lock.hold spans with their attributes', async (t) => {
      const { sdk, locks } = await setup(t)
      const key = uniqueKey('order.processing')
      const lock = locks.createLock(key, '10s')

      expectAcquired(t, await lock.acquire())
      await lock.extend()
      await lock.release()

      const [acquire] = sdk.spans('lock.acquire')
      t.assert.equal(acquire.status.code, SpanStatusCode.UNSET)
      t.assert.containsSubset(attributesOf(acquire), {
        'lock.store': backend.name,
        'lock.type': 'lock',
        'lock.key.prefix': 'order',
        'lock.acquire.outcome': 'acquired',
        'lock.acquire.attempts': 1,
      })
      t.assert.isAtLeast(acquire.attributes['lock.wait.duration'] as number, 0)
      t.assert.equal(acquire.attributes['lock.fencing_token'], lock.fencingToken)
      t.assert.isNumber(lock.fencingToken)

      const [hold] = sdk.spans('lock.hold')
      t.assert.containsSubset(attributesOf(hold), {
        'lock.store': backend.name,
        'lock.hold.outcome': 'released',
      })
      t.assert.isAtLeast(hold.attributes['lock.hold.duration'] as number, 0)
      t.assert.deepEqual(
        hold.events.map((event) => [event.name, event.attributes]),
        [['lock.extended', { 'lock.ttl': 10 }]]
      )

      /**
       * The key's id part is never recorded
       */
      const id = key.slice('order.processing:'.length)
      for (const span of sdk.spans()) {
        for (const value of Object.values(span.attributes)) {
          t.assert.notInclude(String(value), id)
        }
      }
    })

    test('overlapping runs of one Lock object end every span they start', async (t) => {
      const { sdk, locks } = await setup(t)
      const lock = locks.createLock(uniqueKey('order.overlap'), '10s')
      const results = await Promise.all(
        [1, 2, 3].map(() => lock.run(() => sleep(20), { retry: { timeout: '10s' } }))
      )
      t.assert.deepEqual(
        results.map(([ran]) => ran),
        [true, true, true]
      )
      t.assert.lengthOf(sdk.spans('lock.acquire'), 3)
      t.assert.lengthOf(sdk.spans('lock.hold'), 3)
    })

    test('refused, timed out and aborted acquires', async (t) => {
      const { sdk, locks } = await setup(t)
      const key = uniqueKey('report')
      const holder = locks.createLock(key, '10s')
      expectAcquired(t, await holder.acquire())

      t.assert.isFalse(await locks.createLock(key).acquireImmediately())
      t.assert.isFalse(await locks.createLock(key).acquire({ retry: { timeout: 100 } }))
      const controller = new AbortController()
      const aborted = locks.createLock(key).acquire({ signal: controller.signal })
      setTimeout(() => controller.abort(new Error('client went away')), 50)
      await t.assert.rejects(() => aborted)
      await holder.release()

      const outcomes = sdk
        .spans('lock.acquire')
        .map((span) => span.attributes['lock.acquire.outcome'])
      t.assert.deepEqual(outcomes, ['acquired', 'refused', 'timed_out', 'aborted'])
      const [, refused, timedOut] = sdk.spans('lock.acquire')
      t.assert.equal(refused.attributes['lock.acquire.attempts'], 1)
      t.assert.isAtLeast(timedOut.attributes['lock.wait.duration'] as number, 0.09)
      for (const span of sdk.spans('lock.acquire')) {
        t.assert.equal(span.status.code, SpanStatusCode.UNSET)
      }
    })

    test('a storage error is recorded on the span, with the store error', async (t) => {
      const sdk = await registerSdk(t)
      const locks = new LockFactory(await backend.broken(t), { storeName: backend.name })

      await t.assert.rejects(() => locks.createLock('invoice:7').acquire(), E_LOCK_STORAGE_ERROR)

      const [span] = sdk.spans('lock.acquire')
      t.assert.equal(span.attributes['lock.acquire.outcome'], 'error')
      t.assert.isString(span.attributes['error.type'])
      t.assert.equal(span.status.code, SpanStatusCode.ERROR)
      t.assert.lengthOf(
        span.events.filter((event) => event.name === 'exception'),
        1
      )
      t.assert.deepEqual(await points(sdk, 'lock.acquire.duration'), [
        [
          {
            'lock.store': backend.name,
            'lock.type': 'lock',
            'lock.key.prefix': 'invoice',
            'lock.acquire.outcome': 'error',
            'error.type': span.attributes['error.type']!,
          },
          1,
        ],
      ])
    })

    test('a lock.acquire span is a child of the active span, and its wait covers the wait', async (t) => {
      const { sdk, locks } = await setup(t)
      const key = uniqueKey('payment')
      const holder = locks.createLock(key, '10s')
      expectAcquired(t, await holder.acquire())
      setTimeout(() => holder.release(), 200)

      const tracer = trace.getTracer('test')
      const parent = await tracer.startActiveSpan('POST /payments', async (span) => {
        const acquired = await locks.createLock(key).run(() => 'done')
        t.assert.deepEqual(acquired, [true, 'done'])
        span.end()
        return span
      })

      const waiter = sdk.spans('lock.acquire').at(-1)!
      t.assert.equal(waiter.spanContext().traceId, parent.spanContext().traceId)
      t.assert.equal(waiter.parentSpanContext?.spanId, parent.spanContext().spanId)
      t.assert.isAtLeast(waiter.attributes['lock.wait.duration'] as number, 0.19)
      const hold = sdk.spans('lock.hold').at(-1)!
      t.assert.equal(hold.parentSpanContext?.spanId, parent.spanContext().spanId)
    })

    test('a semaphore records its type and limit', async (t) => {
      const { sdk, locks } = await setup(t)
      const semaphore = locks.createSemaphore(uniqueKey('exports'), 2, '10s')
      expectAcquired(t, await semaphore.acquire())
      await semaphore.release()

      t.assert.containsSubset(attributesOf(sdk.spans('lock.acquire')[0]), {
        'lock.type': 'semaphore',
        'lock.semaphore.limit': 2,
        'lock.acquire.outcome': 'acquired',
      })
      t.assert.containsSubset(attributesOf(sdk.spans('lock.hold')[0]), {
        'lock.type': 'semaphore',
        'lock.hold.outcome': 'released',
      })
    })

    test('a lock lost while held: lock.lost event, counted once', async (t) => {
      const { sdk, locks } = await setup(t)
      const key = uniqueKey('sync')
      const lock = locks.createLock(key, '300ms')

      /**
       * Taken over under the watchdog: its next extension is refused
       */
      const [, lostReason] = await lock.run(
        async ({ signal }) => {
          await locks.createLock(key).forceRelease()
          await new Promise((resolve) => signal.addEventListener('abort', resolve))
          return (signal.reason as Error).message
        },
        { autoExtend: true }
      )
      t.assert.match(String(lostReason), /was lost/)

      const hold = sdk.spans('lock.hold').at(-1)!
      t.assert.equal(hold.attributes['lock.hold.outcome'], 'lost')
      t.assert.deepEqual(
        hold.events.map((event) => event.name),
        ['lock.lost']
      )
      t.assert.deepEqual(await points(sdk, 'lock.losses'), [
        [{ 'lock.store': backend.name, 'lock.type': 'lock', 'lock.key.prefix': 'sync' }, 1],
      ])
    })

    test('metrics after a known sequence', async (t) => {
      const { sdk, locks } = await setup(t)
      const key = uniqueKey('job')
      const first = locks.createLock(key, '10s')
      expectAcquired(t, await first.acquire())
      await first.extend()
      await first.extend()
      t.assert.isFalse(await locks.createLock(key).acquireImmediately())
      t.assert.isFalse(await locks.createLock(key).acquire({ retry: { timeout: 50 } }))
      await first.release()

      /**
       * Released under run() by someone else: found lost at release
       */
      const second = locks.createLock(key, '10s')
      await second.run(() => locks.createLock(key).forceRelease())

      const base = { 'lock.store': backend.name, 'lock.type': 'lock', 'lock.key.prefix': 'job' }
      const waits = await points(sdk, 'lock.acquire.duration')
      t.assert.sameDeepMembers(waits, [
        [{ ...base, 'lock.acquire.outcome': 'acquired' }, 2],
        [{ ...base, 'lock.acquire.outcome': 'refused' }, 1],
        [{ ...base, 'lock.acquire.outcome': 'timed_out' }, 1],
      ])
      t.assert.deepEqual(await points(sdk, 'lock.hold.duration'), [[base, 2]])
      t.assert.deepEqual(await points(sdk, 'lock.extensions'), [[base, 2]])
      t.assert.deepEqual(await points(sdk, 'lock.losses'), [[base, 1]])

      const wait = await sdk.metric('lock.acquire.duration')
      t.assert.equal(wait?.descriptor.unit, 's')
      t.assert.equal(wait?.dataPointType, DataPointType.HISTOGRAM)
    })

    test('telemetry: false records nothing', async (t) => {
      const { sdk, locks } = await setup(t, { telemetry: false })
      const lock = locks.createLock(uniqueKey('quiet'))
      expectAcquired(t, await lock.acquire())
      await lock.extend()
      await lock.release()

      t.assert.lengthOf(sdk.spans(), 0)
      t.assert.isUndefined(await sdk.metric('lock.acquire.duration'))
    })
  })
}

test.group('Telemetry', () => {
  test('nothing is recorded before an SDK is registered', async ({ assert }) => {
    assert.isUndefined(acquireStarted({ key: 'a:b' }, 'memory'))
    const locks = new LockFactory(new MemoryStore())
    const lock = locks.createLock('a:b')
    assert.isTrue(await lock.acquire())
    await lock.release()
  })

  test('an SDK registered after the manager was made is used', async (t) => {
    const locks = new LockManager({
      default: 'memory',
      stores: { memory: { driver: { factory: () => new MemoryStore() } } },
    })
    const early = locks.createLock('early')
    expectAcquired(t, await early.acquire())
    await early.release()

    const sdk = await registerSdk(t)
    const late = locks.createLock('late')
    expectAcquired(t, await late.acquire())
    await late.release()
    t.assert.lengthOf(sdk.spans('lock.acquire'), 1)
    t.assert.deepEqual(await points(sdk, 'lock.acquire.duration'), [
      [
        {
          'lock.store': 'memory',
          'lock.type': 'lock',
          'lock.key.prefix': 'late',
          'lock.acquire.outcome': 'acquired',
        },
        1,
      ],
    ])
  })

  test('telemetry: false in the manager config reaches its locks', async (t) => {
    const sdk = await registerSdk(t)
    const locks = new LockManager({
      default: 'memory',
      telemetry: false,
      stores: { memory: { driver: { factory: () => new MemoryStore() } } },
    })
    const lock = locks.createLock('quiet')
    expectAcquired(t, await lock.acquire())
    await lock.release()
    t.assert.lengthOf(sdk.spans(), 0)
  })

  test('telemetry must be a boolean', ({ assert }) => {
    assert.throws(
      () => new LockFactory(new MemoryStore(), { telemetry: 'no' as never }),
      'Invalid "telemetry" "no": expected true or false'
    )
  })

  test('key prefixes: the first segment, and a bounded number of metric series', async (t) => {
    t.assert.equal(keyPrefix('order.processing.42'), 'order')
    t.assert.equal(keyPrefix('user:42:avatar'), 'user')
    t.assert.equal(keyPrefix('nightly-report'), 'nightly-report')

    const sdk = await registerSdk(t)
    const locks = new LockFactory(new MemoryStore(), { storeName: 'memory' })
    for (let i = 0; i < MAX_METRIC_PREFIXES + 10; i++) {
      const lock = locks.createLock(`tenant${i}:job`)
      expectAcquired(t, await lock.acquireImmediately())
      await lock.release()
    }
    const series = await points(sdk, 'lock.acquire.duration')
    const prefixes = series.map(([attributes]) => attributes['lock.key.prefix'])
    t.assert.lengthOf(prefixes, MAX_METRIC_PREFIXES + 1)
    t.assert.include(prefixes, OTHER_PREFIX)
    /**
     * Spans have no such bound
     */
    t.assert.equal(sdk.spans('lock.acquire').at(-1)!.attributes['lock.key.prefix'], 'tenant59')
  })

  test('markRequestRefused marks the active span', async (t) => {
    const sdk = await registerSdk(t)
    const tracer = trace.getTracer('test')
    tracer.startActiveSpan('POST /orders', (span) => {
      markRequestRefused(409, 'E_LOCK_TIMEOUT')
      span.end()
    })
    tracer.startActiveSpan('POST /payments', (span) => {
      markRequestRefused(503, 'E_LOCK_STORAGE_ERROR')
      span.end()
    })
    markRequestRefused(409, 'E_LOCK_TIMEOUT')

    const [conflict, unavailable] = sdk.spans()
    t.assert.containsSubset(conflict.attributes, {
      'lock.refusal.status': 409,
      'lock.refusal.code': 'E_LOCK_TIMEOUT',
    })
    t.assert.equal(conflict.status.code, SpanStatusCode.UNSET)
    t.assert.deepEqual(conflict.events[0].attributes, {
      'http.response.status_code': 409,
      'error.type': 'E_LOCK_TIMEOUT',
    })
    t.assert.equal(unavailable.attributes['lock.refusal.status'], 503)
    t.assert.equal(unavailable.status.code, SpanStatusCode.ERROR)
  })
})

function expectAcquired(t: TestContext, acquired: boolean) {
  t.assert.isTrue(acquired)
}
