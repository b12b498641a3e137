import { spawn, type ChildProcess } from 'node:child_process'
import { test } from '@japa/runner'
import { MultipartFile } from '@adonisjs/core/bodyparser'
import { Redis, type RedisOptions } from 'ioredis'
import { stores } from '../index.ts'
import { canonicalJson, sha256 } from '../src/middleware/fingerprint.ts'
import LockMiddleware from '../src/middleware/lock_middleware.ts'
import { E_INVALID_LOCK_CONFIG } from '../src/errors.ts'
import { RedisStore } from '../src/stores/redis/redis_store.ts'
import type { LockStore, StoreEntry } from '../src/types.ts'
import { sleep } from '../src/wait.ts'
import { startApp, type TestApp } from './fixtures/middleware/app.ts'
import { cacheExtras, closedPort } from './fixtures/middleware/cache.ts'
import {
  call,
  counts,
  entered,
  openGate,
  startWorker,
  statusOf,
  stopWorker,
  until,
  type Reply,
  type Worker,
} from './fixtures/middleware/client.ts'
import { canConnect, SERVICES, serviceAvailable, uniqueKey } from './helpers/services.ts'

const SKIPPED = 'its store is not available (see the warning above)'

/**
 * A store that fails like an unreachable backend
 */
class UnreachableStore implements LockStore {
  async save(): Promise<boolean> {
    throw new Error('connect ECONNREFUSED')
  }
  async delete(): Promise<void> {
    throw new Error('connect ECONNREFUSED')
  }
  async forceDelete(): Promise<void> {
    throw new Error('connect ECONNREFUSED')
  }
  async exists(): Promise<boolean> {
    throw new Error('connect ECONNREFUSED')
  }
  async extend(): Promise<void> {
    throw new Error('connect ECONNREFUSED')
  }
}

interface SuiteOptions {
  /**
   * `config/lock.ts` of the app: a working default store and a `broken`
   * one whose backend is down
   */
  lockConfig: () => { default: string; stores: Record<string, StoreEntry>; prefix?: string }
  setup?: () => Promise<void>
  teardown?: () => Promise<void>
  skip?: () => Promise<string | false>
}

function registerMiddlewareSuite(name: string, options: SuiteOptions) {
  test.group(`Lock middleware (${name})`, (group) => {
    let app: TestApp
    let skipReason: string | false = false

    group.setup(async () => {
      skipReason = (await options.skip?.()) ?? false
      if (skipReason) return
      await options.setup?.()
      app = await startApp(options.lockConfig())
    })
    group.teardown(async () => {
      if (skipReason) return
      await app?.close()
      await options.teardown?.()
    })
    group.tap((t) => t.skip(() => skipReason !== false, SKIPPED))
    group.each.teardown(() => app?.gates.openAll())

    test('20 concurrent identical requests: 1 runs, 19 get 409 with Retry-After', async ({
      assert,
    }) => {
      const gate = uniqueKey('gate')
      const pending = Array.from({ length: 20 }, () =>
        call(app.url, '/orders', { body: { item: 'book', qty: 2 }, gate, user: '1' })
      )
      const settled: Reply[] = []
      for (const reply of pending) reply.then((r) => settled.push(r))

      // The one that got the lock holds it until the gate opens
      await until(() => settled.length === 19, '19 refusals')
      assert.deepEqual(counts(settled), { 409: 19 })
      for (const reply of settled) {
        assert.deepEqual(reply.body, {
          errors: [
            {
              message: 'A conflicting request is still being processed',
              code: 'E_LOCK_TIMEOUT',
              retryAfter: Number(reply.headers.get('retry-after')),
            },
          ],
        })
        const retryAfter = Number(reply.headers.get('retry-after'))
        assert.isTrue(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30)
      }

      app.gates.open(gate)
      const replies = await Promise.all(pending)
      assert.deepEqual(counts(replies), { 200: 1, 409: 19 })
      assert.equal(app.gates.stats(gate).entered, 1)

      // Released in finally: the same request runs again
      const again = await call(app.url, '/orders', { body: { item: 'book', qty: 2 }, user: '1' })
      assert.equal(again.status, 200)
    })

    test('different payloads, users and params run in parallel', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const pending = [
        call(app.url, '/orders', { body: { item: 'book' }, gate, user: '1' }),
        call(app.url, '/orders', { body: { item: 'pen' }, gate, user: '1' }),
        call(app.url, '/orders', { body: { item: 'book' }, gate, user: '2' }),
        call(app.url, '/orders', { body: { item: 'book' }, query: 'page=2', gate, user: '1' }),
        call(app.url, '/orders/1', { body: { item: 'book' }, gate, user: '1' }),
        call(app.url, '/orders/2', { body: { item: 'book' }, gate, user: '1' }),
      ]
      await until(() => app.gates.stats(gate).entered === 6, 'all 6 requests in the handler')
      assert.equal(app.gates.stats(gate).maxRunning, 6)
      app.gates.open(gate)
      assert.deepEqual(counts(await Promise.all(pending)), { 200: 6 })
    })

    test('key order and whitespace do not make a request different', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/orders', {
        raw: '{"a":1,"b":{"x":[1,{"p":1,"q":2}],"y":"z"}}',
        query: 'x=1&y=2',
        gate,
        user: '3',
      })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')

      const reordered = await call(app.url, '/orders', {
        raw: '{ "b" : { "y": "z",\n  "x": [ 1, { "q": 2, "p": 1 } ] },\t"a": 1 }',
        query: 'y=2&x=1',
        user: '3',
      })
      assert.equal(reordered.status, 409)

      // Array order does count
      const otherOrder = call(app.url, '/orders', {
        raw: '{"a":1,"b":{"x":[{"p":1,"q":2},1],"y":"z"}}',
        query: 'x=1&y=2',
        gate,
        user: '3',
      })
      await until(() => app.gates.stats(gate).entered === 2, 'the array-reordered request')

      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
      assert.equal(await statusOf(otherOrder), 200)
    })

    test('uploads count by file name and size', async ({ assert }) => {
      const form = (fileName: string, bytes: number) => {
        const data = new FormData()
        data.append('title', 'holiday')
        data.append('photo', new Blob([new Uint8Array(bytes)]), fileName)
        return data
      }
      const gate = uniqueKey('gate')
      const first = call(app.url, '/uploads', { form: form('a.png', 10), gate, user: '15' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first upload in the handler')

      const same = await call(app.url, '/uploads', { form: form('a.png', 10), user: '15' })
      assert.equal(same.status, 409)

      const others = [
        call(app.url, '/uploads', { form: form('b.png', 10), gate, user: '15' }),
        call(app.url, '/uploads', { form: form('a.png', 11), gate, user: '15' }),
      ]
      await until(() => app.gates.stats(gate).entered === 3, 'the other uploads in the handler')
      app.gates.open(gate)
      assert.deepEqual(counts([await first, ...(await Promise.all(others))]), { 200: 3 })
    })

    test('the lock is released when the route throws', async ({ assert }) => {
      for (let i = 0; i < 3; i++) {
        const reply = await call(app.url, '/fail', { body: { n: 1 }, user: '4' })
        assert.equal(reply.status, 500)
        assert.deepEqual(reply.body, { message: 'route failed' })
      }
    })

    test('wait: a duplicate waits for the first one instead of a 409', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/waiting', { body: { a: 1 }, gate, user: '5' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')

      let secondDone = false
      const second = call(app.url, '/waiting', { body: { a: 1 }, gate, user: '5' }).finally(
        () => (secondDone = true)
      )
      await sleep(300)
      assert.isFalse(secondDone)
      assert.equal(app.gates.stats(gate).entered, 1)

      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
      assert.equal(await statusOf(second), 200)
      assert.equal(app.gates.stats(gate).entered, 2)
      assert.equal(app.gates.stats(gate).maxRunning, 1)
    })

    test('scope user: one request of a user on the route, whatever the payload', async ({
      assert,
    }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/profile/bio', { body: { text: 'a' }, gate, user: '6' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')

      const samePayload = await call(app.url, '/profile/bio', { body: { text: 'a' }, user: '6' })
      const otherPayload = await call(app.url, '/profile/bio', {
        body: { text: 'b' },
        query: 'v=2',
        user: '6',
      })
      assert.equal(samePayload.status, 409)
      assert.equal(otherPayload.status, 409)

      const others = [
        call(app.url, '/profile/bio', { body: { text: 'a' }, gate, user: '7' }),
        call(app.url, '/profile/avatar', { body: { text: 'a' }, gate, user: '6' }),
      ]
      await until(() => app.gates.stats(gate).entered === 3, 'other user and other params')
      app.gates.open(gate)
      assert.deepEqual(counts([await first, ...(await Promise.all(others))]), { 200: 3 })
    })

    test('without a user the client IP is the identity', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/orders', { body: { anonymous: true }, gate })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')
      assert.equal(await statusOf(call(app.url, '/orders', { body: { anonymous: true } })), 409)
      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
    })

    test('custom key: shared with locks.createLock(), null skips, undefined is the default', async ({
      assert,
    }) => {
      const key = uniqueKey('order')
      const lock = app.locks.createLock(key, '10s')
      assert.isTrue(await lock.acquireImmediately())
      try {
        const refused = await call(app.url, '/custom', {
          body: { any: 'thing' },
          headers: { 'x-lock-key': key },
        })
        assert.equal(refused.status, 409)
        const retryAfter = Number(refused.headers.get('retry-after'))
        assert.isTrue(retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`)

        const skipped = await call(app.url, '/custom', {
          body: { any: 'thing' },
          headers: { 'x-lock-key': key, 'x-skip': '1' },
        })
        assert.equal(skipped.status, 200)
      } finally {
        await lock.release()
      }
      const free = await call(app.url, '/custom', { headers: { 'x-lock-key': key } })
      assert.equal(free.status, 200)

      // undefined: the default key, so identical requests are refused
      const gate = uniqueKey('gate')
      const first = call(app.url, '/custom', { body: { a: 1 }, gate, user: '8' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')
      assert.equal(await statusOf(call(app.url, '/custom', { body: { a: 1 }, user: '8' })), 409)
      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
    })

    test('a key() returning null never locks', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const pending = Array.from({ length: 3 }, () =>
        call(app.url, '/unguarded', { body: { a: 1 }, gate, user: '9' })
      )
      await until(() => app.gates.stats(gate).entered === 3, 'the 3 requests in the handler')
      app.gates.open(gate)
      assert.deepEqual(counts(await Promise.all(pending)), { 200: 3 })
    })

    test('Idempotency-Key required: 400 without it, 409 in flight, 422 other payload', async ({
      assert,
    }) => {
      const missing = await call(app.url, '/payments', { body: { amount: 10 }, user: '10' })
      assert.equal(missing.status, 400)
      assert.deepEqual(missing.body, {
        errors: [
          {
            message: 'This request requires an Idempotency-Key header',
            code: 'E_IDEMPOTENCY_KEY_MISSING',
          },
        ],
      })

      const idempotencyKey = crypto.randomUUID()
      const headers = { 'idempotency-key': idempotencyKey }
      const gate = uniqueKey('gate')
      const first = call(app.url, '/payments', { body: { amount: 10 }, headers, gate, user: '10' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')

      // The structured-field form of the same key, same payload in another key order
      const retried = await call(app.url, '/payments', {
        raw: '{ "amount": 10 }',
        headers: { 'idempotency-key': `"${idempotencyKey}"` },
        user: '10',
      })
      assert.equal(retried.status, 409)
      assert.equal(retried.body.errors[0].code, 'E_LOCK_TIMEOUT')
      const retryAfter = Number(retried.headers.get('retry-after'))
      assert.isTrue(retryAfter >= 1 && retryAfter <= 20, `Retry-After ${retryAfter}`)

      const reused = await call(app.url, '/payments', { body: { amount: 99 }, headers, user: '10' })
      assert.equal(reused.status, 422)
      assert.deepEqual(reused.body, {
        errors: [
          {
            message: 'This Idempotency-Key is in use for a different request payload',
            code: 'E_IDEMPOTENCY_KEY_REUSED',
          },
        ],
      })

      // Another key, or the same key of another user, is another request
      const others = [
        call(app.url, '/payments', {
          body: { amount: 10 },
          headers: { 'idempotency-key': crypto.randomUUID() },
          gate,
          user: '10',
        }),
        call(app.url, '/payments', { body: { amount: 10 }, headers, gate, user: '11' }),
      ]
      await until(() => app.gates.stats(gate).entered === 3, 'the other key and user')
      app.gates.open(gate)
      assert.deepEqual(counts([await first, ...(await Promise.all(others))]), { 200: 3 })

      // A 422 or 409 never left a lock behind: the key is free again
      const after = await call(app.url, '/payments', { body: { amount: 99 }, headers, user: '10' })
      assert.equal(after.status, 200)
    })

    test('Idempotency-Key optional: without it the duplicate guard applies', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/transfers', { body: { to: 'x' }, gate, user: '12' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')
      assert.equal(
        await statusOf(call(app.url, '/transfers', { body: { to: 'x' }, user: '12' })),
        409
      )

      // With distinct keys, identical payloads are distinct requests
      const keyed = [1, 2].map(() =>
        call(app.url, '/transfers', {
          body: { to: 'x' },
          headers: { 'idempotency-key': crypto.randomUUID() },
          gate,
          user: '12',
        })
      )
      await until(() => app.gates.stats(gate).entered === 3, 'the keyed requests in the handler')
      app.gates.open(gate)
      assert.deepEqual(counts([await first, ...(await Promise.all(keyed))]), { 200: 3 })
    })

    test('store down: 503 E_LOCK_STORAGE_ERROR, the route never runs', async ({ assert }) => {
      const gate = uniqueKey('gate')
      app.gates.open(gate)
      const reply = await call(app.url, '/broken', { body: { a: 1 }, gate, user: '13' })
      assert.equal(reply.status, 503)
      assert.equal(reply.body.errors[0].code, 'E_LOCK_STORAGE_ERROR')
      assert.equal(app.gates.stats(gate).entered, 0)
    })

    test('store down: the 503 shows nothing internal, in JSON, JSON:API and HTML', async ({
      assert,
    }) => {
      const gate = uniqueKey('gate')
      app.gates.open(gate)
      for (const accept of ['application/json', 'application/vnd.api+json', 'text/html']) {
        const reply = await call(app.url, '/broken', {
          body: { a: 1 },
          gate,
          user: '13',
          headers: { accept },
        })
        assert.equal(reply.status, 503)
        const text = JSON.stringify(reply.body)
        assert.include(text, 'The lock store failed')
        for (const internal of ['ECONNREFUSED', 'Connection', '127.0.0.1', 'http:', 'acquire']) {
          assert.notInclude(text, internal)
        }
      }
      assert.equal(app.gates.stats(gate).entered, 0)
    })

    test("Retry-After: the route's recent durations, capped by the holder's time left", async ({
      assert,
    }) => {
      // No history yet: the time the holder has left (ttl 30s)
      const gate = uniqueKey('gate')
      const first = call(app.url, '/retry-after', { body: { a: 1 }, gate, user: '16' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')
      const cold = await call(app.url, '/retry-after', { body: { a: 1 }, user: '16' })
      assert.equal(cold.status, 409)
      const coldSeconds = Number(cold.headers.get('retry-after'))
      assert.isAtLeast(coldSeconds, 20)
      assert.isAtMost(coldSeconds, 30)
      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)

      // Requests of a few ms: the longest of them, rounded up to seconds
      for (let index = 0; index < 3; index++) {
        assert.equal(
          await statusOf(call(app.url, '/retry-after', { body: { index }, user: '16' })),
          200
        )
      }
      const gate2 = uniqueKey('gate')
      const second = call(app.url, '/retry-after', { body: { a: 2 }, gate: gate2, user: '16' })
      await until(() => app.gates.stats(gate2).entered === 1, 'the second request in the handler')
      const warm = await call(app.url, '/retry-after', { body: { a: 2 }, user: '16' })
      assert.equal(warm.status, 409)
      const warmSeconds = Number(warm.headers.get('retry-after'))
      assert.isAtLeast(warmSeconds, 1)
      assert.isAtMost(warmSeconds, 5)
      assert.equal(warm.body.errors[0].retryAfter, warmSeconds)
      app.gates.open(gate2)
      assert.equal(await statusOf(second), 200)
    })

    test('wait running out: 409 once the wait is over, the route ran once', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/waiting-short', { body: { a: 1 }, gate, user: '18' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')
      const startedAt = performance.now()
      const second = await call(app.url, '/waiting-short', { body: { a: 1 }, gate, user: '18' })
      assert.equal(second.status, 409)
      assert.isAtLeast(performance.now() - startedAt, 290)
      assert.equal(app.gates.stats(gate).entered, 1)
      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
    })

    test('wait is ignored for a request with an Idempotency-Key: 409 at once', async ({
      assert,
    }) => {
      const gate = uniqueKey('gate')
      const headers = { 'idempotency-key': crypto.randomUUID() }
      const first = call(app.url, '/payments-waiting', {
        body: { a: 1 },
        headers,
        gate,
        user: '19',
      })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')
      // The route waits 60s: a retry that waited would still be pending
      let retry: Reply | undefined
      call(app.url, '/payments-waiting', { body: { a: 1 }, headers, user: '19' }).then(
        (reply) => (retry = reply)
      )
      await until(() => retry !== undefined, 'the retry answered while the first still runs')
      assert.equal(retry!.status, 409)
      assert.equal(app.gates.stats(gate).running, 1)
      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
    })

    test('ttl: once a request outlives it, its duplicate runs', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/short-ttl', { body: { a: 1 }, gate, user: '20' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')
      // The lock lives 1 s: retry until the duplicate gets in
      await until(
        async () =>
          (await statusOf(call(app.url, '/short-ttl', { body: { a: 1 }, user: '20' }))) === 200,
        'the duplicate to run after the ttl'
      )
      assert.equal(app.gates.stats(gate).running, 1)
      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
    })

    test('409 in JSON:API and HTML', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const first = call(app.url, '/orders', { body: { format: 1 }, gate, user: '14' })
      await until(() => app.gates.stats(gate).entered === 1, 'the first request in the handler')

      const jsonApi = await call(app.url, '/orders', {
        body: { format: 1 },
        user: '14',
        headers: { accept: 'application/vnd.api+json' },
      })
      assert.equal(jsonApi.status, 409)
      assert.equal(jsonApi.body.errors[0].code, 'E_LOCK_TIMEOUT')
      assert.equal(jsonApi.body.errors[0].status, 409)

      const html = await call(app.url, '/orders', {
        body: { format: 1 },
        user: '14',
        headers: { accept: 'text/html' },
      })
      assert.equal(html.status, 409)
      assert.equal(html.body, '<p> A conflicting request is still being processed </p>')
      assert.isNotNull(html.headers.get('retry-after'))

      app.gates.open(gate)
      assert.equal(await statusOf(first), 200)
    })
  })
}

registerMiddlewareSuite('memory', {
  lockConfig: () => ({
    default: 'memory',
    stores: {
      memory: stores.memory(),
      broken: { driver: { factory: () => new UnreachableStore() } },
    },
  }),
})

/**
 * Why the Redis middleware tests cannot run: only a server that is not
 * there. A RedisStore that fails is a failure of these tests, not a skip.
 */
async function redisStoreSkipReason(): Promise<string | false> {
  return (await serviceAvailable('redis')) ? false : 'Redis is not reachable'
}

let redis: Redis
let deadRedis: Redis
let deadPort: number

registerMiddlewareSuite('redis', {
  skip: redisStoreSkipReason,
  async setup() {
    redis = new Redis(SERVICES.redis)
    deadPort = await closedPort()
    deadRedis = new Redis({
      host: '127.0.0.1',
      port: deadPort,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    // Its failures reach the requests; nothing else should see them
    deadRedis.on('error', () => {})
  },
  async teardown() {
    await redis.quit()
    deadRedis.disconnect()
  },
  lockConfig: () => ({
    default: 'redis',
    prefix: uniqueKey('mw'),
    stores: {
      redis: { driver: { factory: () => new RedisStore({ connection: redis }) } },
      broken: { driver: { factory: () => new RedisStore({ connection: deadRedis }) } },
    },
  }),
})

test.group('Lock middleware (redis, 3 processes)', (group) => {
  let workers: Worker[] = []
  let skipReason: string | false = false

  group.setup(async () => {
    skipReason = await redisStoreSkipReason()
    if (skipReason) return
    const prefix = uniqueKey('mw-procs')
    workers = await Promise.all([startWorker(prefix), startWorker(prefix), startWorker(prefix)])
  })
  group.teardown(async () => {
    await Promise.all(workers.map(stopWorker))
  })
  group.tap((t) => t.skip(() => skipReason !== false, SKIPPED).timeout(60_000))

  test('30 identical requests across 3 processes: 1 runs, 29 get 409', async ({ assert }) => {
    const gate = uniqueKey('gate')
    const pending = Array.from({ length: 30 }, (_, i) =>
      call(workers[i % 3].url, '/orders', { body: { item: 'book' }, gate, user: '1' })
    )
    const settled: Reply[] = []
    for (const reply of pending) reply.then((r) => settled.push(r))
    await until(() => settled.length === 29, '29 refusals', 40_000)
    assert.deepEqual(counts(settled), { 409: 29 })

    await Promise.all(workers.map((worker) => openGate(worker, gate)))
    assert.deepEqual(counts(await Promise.all(pending)), { 200: 1, 409: 29 })
    const enteredCounts = await Promise.all(workers.map((worker) => entered(worker, gate)))
    assert.equal(
      enteredCounts.reduce((a, b) => a + b),
      1
    )
  })

  test('Idempotency-Key across processes: 409 same payload, 422 other payload', async ({
    assert,
  }) => {
    const gate = uniqueKey('gate')
    const headers = { 'idempotency-key': crypto.randomUUID() }
    const first = call(workers[0].url, '/payments', {
      body: { amount: 5 },
      headers,
      gate,
      user: '2',
    })
    await until(async () => (await entered(workers[0], gate)) === 1, 'the first request', 40_000)

    const same = await call(workers[1].url, '/payments', {
      body: { amount: 5 },
      headers,
      user: '2',
    })
    const other = await call(workers[2].url, '/payments', {
      body: { amount: 6 },
      headers,
      user: '2',
    })
    assert.equal(same.status, 409)
    assert.equal(other.status, 422)

    await openGate(workers[0], gate)
    assert.equal(await statusOf(first), 200)
  })
})

test.group('Lock middleware internals', () => {
  test('canonical JSON ignores key order, keeps array order, counts files by name and size', ({
    assert,
  }) => {
    assert.equal(
      canonicalJson({ b: { d: [1, 2], c: 'x' }, a: null, skipped: undefined }),
      '{"a":null,"b":{"c":"x","d":[1,2]}}'
    )
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]))
    const upload = (fieldName: string, size: number, tmpPath: string) => {
      const file = new MultipartFile({ fieldName, clientName: 'a.png', headers: {} }, {})
      file.size = size
      file.tmpPath = tmpPath
      return file
    }
    assert.equal(
      canonicalJson({ avatar: upload('avatar', 10, '/tmp/x1') }),
      canonicalJson({ avatar: upload('photo', 10, '/tmp/x2') })
    )
    assert.notEqual(
      canonicalJson({ avatar: upload('avatar', 10, '/tmp/x1') }),
      canonicalJson({ avatar: upload('avatar', 11, '/tmp/x1') })
    )
    assert.equal(canonicalJson({ at: new Date(0) }), '{"at":"1970-01-01T00:00:00.000Z"}')
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    assert.equal(canonicalJson(cyclic), '{"a":1,"self":"[Circular]"}')
    assert.equal(sha256('x').length, 43)
  })

  test('a JSON object saying isMultipartFile is data, not a file', ({ assert }) => {
    const claim = { isMultipartFile: true, clientName: 'a.png', size: 10 }
    assert.notEqual(
      canonicalJson({ avatar: { ...claim, amount: 1 } }),
      canonicalJson({ avatar: { ...claim, amount: 2 } })
    )
  })

  test('a body nested 100,000 deep hashes without overflowing the stack', ({ assert }) => {
    const depth = 100_000
    const deep = JSON.parse(`${'['.repeat(depth)}1${']'.repeat(depth)}`)
    const text = canonicalJson(deep)
    assert.lengthOf(text, depth * 2 + 1)
    assert.notEqual(
      canonicalJson(deep),
      canonicalJson(JSON.parse(`${'['.repeat(depth)}2${']'.repeat(depth)}`))
    )
  })

  test('bad options raise E_INVALID_LOCK_CONFIG naming the option', async ({ assert }) => {
    const middleware = new LockMiddleware()
    const next = async () => {}
    const ctx = {} as any
    for (const [options, field] of [
      [{ ttl: 'soon' }, 'ttl'],
      [{ ttl: 0 }, 'ttl'],
      [{ wait: -1 }, 'wait'],
      [{ scope: 'everyone' }, 'scope'],
      [{ idempotency: 'yes' }, 'idempotency'],
      [{ key: 'fixed' }, 'key'],
      [{ timeout: 'never' }, 'timeout'],
      [{ idempotency: 'required', replay: { ttl: 'abc' } }, 'replay.ttl'],
      [{ idempotency: 'required', replay: { store: 42 } }, 'replay.store'],
      [{ idempotency: 'required', replay: { headers: ['Set-Cookie'] } }, 'set-cookie'],
      [{ replay: true }, 'idempotency'],
    ] as const) {
      const error = await middleware.handle(ctx, next, options as any).then(
        () => null,
        (reason: unknown) => reason
      )
      assert.instanceOf(error, E_INVALID_LOCK_CONFIG)
      assert.include((error as Error).message, field)
    }
  })
})

test.group('Lock middleware (redis server dies mid-request)', (group) => {
  let skipReason: string | false = false
  let redisServer: ChildProcess | undefined
  let connection: Redis | undefined
  let app: TestApp | undefined

  group.setup(async () => {
    skipReason = await redisStoreSkipReason()
  })
  group.tap((t) => t.skip(() => skipReason !== false, SKIPPED).timeout(30_000))
  group.each.teardown(async () => {
    if (redisServer && redisServer.exitCode === null) redisServer.kill('SIGCONT')
    await app?.close()
    connection?.disconnect()
    if (redisServer && redisServer.exitCode === null) {
      const exited = new Promise((resolve) => redisServer!.once('exit', resolve))
      redisServer.kill()
      await exited
    }
  })

  /**
   * A redis-server of the test's own, to kill or freeze
   */
  async function startPrivateRedis(): Promise<number> {
    const port = await closedPort()
    redisServer = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' }
    )
    await until(() => canConnect(port), 'the private redis-server')
    return port
  }

  /**
   * The test app with the Redis store on a connection to that server
   */
  async function startAppOn(port: number, options: RedisOptions) {
    const store = new Redis({ host: '127.0.0.1', port, ...options })
    connection = store
    store.on('error', () => {})
    await new Promise((resolve) => store.once('ready', resolve))
    return startApp({
      default: 'redis',
      stores: { redis: { driver: { factory: () => new RedisStore({ connection: store }) } } },
    })
  }

  test('the response of a request already running survives, the next one gets 503', async ({
    assert,
  }) => {
    const port = await startPrivateRedis()
    app = await startAppOn(port, { enableOfflineQueue: false, maxRetriesPerRequest: 0 })

    const gate = uniqueKey('gate')
    const running = call(app.url, '/orders', { body: { a: 1 }, gate, user: '1' })
    await until(() => app!.gates.stats(gate).entered === 1, 'the request in the handler')

    const exited = new Promise((resolve) => redisServer!.once('exit', resolve))
    redisServer!.kill()
    await exited

    // Its work is done: a failed release must not turn it into an error
    app.gates.open(gate)
    assert.equal(await statusOf(running), 200)

    const refused = await call(app.url, '/orders', { body: { a: 2 }, gate, user: '1' })
    assert.equal(refused.status, 503)
    assert.equal(refused.body.errors[0].code, 'E_LOCK_STORAGE_ERROR')
    assert.equal(app.gates.stats(gate).entered, 1)
  })

  test('a frozen store: a running request still answers, a new one gets 503, both in bounded time', async ({
    assert,
  }) => {
    const port = await startPrivateRedis()
    // Commands wait for an answer as long as it takes: only the middleware bounds them
    app = await startAppOn(port, { maxRetriesPerRequest: null })

    const gate = uniqueKey('gate')
    const running = call(app.url, '/bounded', { body: { a: 1 }, gate, user: '1' })
    await until(() => app!.gates.stats(gate).entered === 1, 'the request in the handler')

    redisServer!.kill('SIGSTOP')
    // Its release gets no answer: the response goes out after the timeout
    app.gates.open(gate)
    assert.equal(await statusOf(running), 200)

    const refused = await call(app.url, '/bounded', { body: { a: 2 }, gate, user: '1' })
    assert.equal(refused.status, 503)
    assert.deepEqual(refused.body, {
      errors: [{ message: 'The lock store failed', code: 'E_LOCK_STORAGE_ERROR' }],
    })
    assert.equal(app.gates.stats(gate).entered, 1)
  })

  test('a frozen replay cache: the response of the route still goes out, a new request gets 503', async ({
    assert,
  }) => {
    const port = await startPrivateRedis()
    app = await startApp(
      { default: 'memory', stores: { memory: stores.memory() } },
      await cacheExtras('redis', uniqueKey('mw-cache'), port)
    )

    const gate = uniqueKey('gate')
    const headers = { 'idempotency-key': crypto.randomUUID() }
    const running = call(app.url, '/charges/bounded', { body: { a: 1 }, headers, gate, user: '1' })
    await until(() => app!.gates.stats(gate).entered === 1, 'the request in the handler')

    redisServer!.kill('SIGSTOP')
    // Storing its response gets no answer: it goes out after the timeout
    app.gates.open(gate)
    assert.equal(await statusOf(running), 201)

    const refused = await call(app.url, '/charges/bounded', {
      body: { a: 2 },
      headers: { 'idempotency-key': crypto.randomUUID() },
      gate,
      user: '1',
    })
    assert.equal(refused.status, 503)
    assert.deepEqual(refused.body, {
      errors: [{ message: 'The lock store failed', code: 'E_LOCK_STORAGE_ERROR' }],
    })
    assert.equal(app.gates.stats(gate).entered, 1)
  })
})
