import { test } from '@japa/runner'
import pg from 'pg'
import { stores } from '../index.ts'
import { E_INVALID_LOCK_CONFIG } from '../src/errors.ts'
import { startApp } from './fixtures/middleware/app.ts'
import {
  call,
  entered,
  openGate,
  startWorker,
  stopWorker,
  until,
  type Reply,
  type Worker,
} from './fixtures/middleware/client.ts'
import { SERVICES, serviceAvailable, uniqueKey } from './helpers/services.ts'

/**
 * How many times the route behind `gate` ran, over every process
 */
async function runs(workers: Worker[], gate: string): Promise<number> {
  const counts = await Promise.all(workers.map((worker) => entered(worker, gate)))
  return counts.reduce((a, b) => a + b, 0)
}

function keyed(idempotencyKey: string, body: unknown, gate: string, user: string) {
  return { body, headers: { 'idempotency-key': idempotencyKey }, gate, user }
}

/**
 * The same response as the first one, marked as a replay, without the
 * headers of the first exchange
 */
function assertReplayOf(assert: any, reply: Reply, original: Reply) {
  assert.equal(reply.status, original.status)
  assert.deepEqual(reply.body, original.body)
  assert.equal(reply.headers.get('idempotency-replayed'), 'true')
  assert.equal(reply.headers.get('location'), original.headers.get('location'))
  assert.equal(reply.headers.get('content-type'), original.headers.get('content-type'))
  assert.isNull(reply.headers.get('set-cookie'))
  assert.isNull(reply.headers.get('x-request-note'))
}

interface CacheSetup {
  kind: 'redis' | 'database'
  skip: () => Promise<string | false>
  name: () => string
  teardown?: (name: string) => Promise<void>
}

function registerReplaySuite(setup: CacheSetup) {
  test.group(`Idempotency-Key replay (2 processes, cache on ${setup.kind})`, (group) => {
    let workers: Worker[] = []
    let skipReason: string | false = false
    let name = ''

    group.setup(async () => {
      skipReason = await setup.skip()
      if (skipReason) return
      name = setup.name()
      const prefix = uniqueKey('mw-replay')
      workers = await Promise.all([
        startWorker(prefix, { kind: setup.kind, name }),
        startWorker(prefix, { kind: setup.kind, name }),
      ])
    })
    group.teardown(async () => {
      await Promise.all(workers.map(stopWorker))
      if (!skipReason) await setup.teardown?.(name)
    })
    group.tap((t) => t.skip(() => skipReason !== false, skipReason || '').timeout(60_000))

    test('the route runs once; 10 retries over both processes get its response replayed', async ({
      assert,
    }) => {
      const gate = uniqueKey('gate')
      const key = crypto.randomUUID()
      const first = call(workers[0].url, '/charges', keyed(key, { amount: 10 }, gate, '1'))
      await until(async () => (await entered(workers[0], gate)) === 1, 'the first request')

      // In flight: a retry is refused, it never runs the route a second time
      const early = await call(workers[1].url, '/charges', keyed(key, { amount: 10 }, gate, '1'))
      assert.equal(early.status, 409)

      await Promise.all(workers.map((worker) => openGate(worker, gate)))
      const original = await first
      assert.equal(original.status, 201)
      assert.isNull(original.headers.get('idempotency-replayed'))
      assert.match(original.headers.get('location')!, /^\/charges\//)
      assert.isNotNull(original.headers.get('set-cookie'))

      const retries = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          call(workers[i % 2].url, '/charges', keyed(key, { amount: 10 }, gate, '1'))
        )
      )
      for (const reply of retries) assertReplayOf(assert, reply, original)
      assert.equal(await runs(workers, gate), 1)
    })

    test('same key, another payload after completion: 422', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const key = crypto.randomUUID()
      await Promise.all(workers.map((worker) => openGate(worker, gate)))
      const first = await call(workers[0].url, '/charges', keyed(key, { amount: 1 }, gate, '2'))
      assert.equal(first.status, 201)

      const other = await call(workers[1].url, '/charges', keyed(key, { amount: 2 }, gate, '2'))
      assert.equal(other.status, 422)
      assert.equal(other.body.errors[0].code, 'E_IDEMPOTENCY_KEY_REUSED')
      assert.equal(await runs(workers, gate), 1)

      // The key of another sender is another request
      const otherUser = await call(workers[1].url, '/charges', keyed(key, { amount: 2 }, gate, '3'))
      assert.equal(otherUser.status, 201)
      assert.equal(await runs(workers, gate), 2)
    })

    test('an expired record: the route runs again', async ({ assert }) => {
      const gate = uniqueKey('gate')
      const key = crypto.randomUUID()
      await Promise.all(workers.map((worker) => openGate(worker, gate)))
      const first = await call(workers[0].url, '/charges/short', keyed(key, { a: 1 }, gate, '4'))
      assert.equal(first.status, 201)

      const replayed = await call(workers[1].url, '/charges/short', keyed(key, { a: 1 }, gate, '4'))
      assertReplayOf(assert, replayed, first)

      // The record lives 3 s; retry until a response is not a replay
      let fresh: Reply | undefined
      await until(async () => {
        const reply = await call(workers[1].url, '/charges/short', keyed(key, { a: 1 }, gate, '4'))
        if (reply.headers.get('idempotency-replayed') === null) fresh = reply
        return fresh !== undefined
      }, 'a retry that runs again')
      assert.equal(fresh!.status, 201)
      assert.notEqual(fresh!.body.id, first.body.id)
      assert.equal(await runs(workers, gate), 2)
    })
  })
}

registerReplaySuite({
  kind: 'redis',
  skip: async () => ((await serviceAvailable('redis')) ? false : 'Redis is not reachable'),
  name: () => uniqueKey('mw-cache'),
})

registerReplaySuite({
  kind: 'database',
  skip: async () => ((await serviceAvailable('postgres')) ? false : 'PostgreSQL is not reachable'),
  name: () => `mw_cache_${process.pid}_${Math.random().toString(36).slice(2, 8)}`,
  async teardown(table) {
    const client = new pg.Client(SERVICES.postgres)
    await client.connect()
    try {
      await client.query(`DROP TABLE IF EXISTS "${table}"`)
    } finally {
      await client.end()
    }
  },
})

test.group('Idempotency-Key replay (one process, cache on Redis)', (group) => {
  let workers: Worker[] = []
  let skipReason: string | false = false

  group.setup(async () => {
    skipReason = (await serviceAvailable('redis')) ? false : 'Redis is not reachable'
    if (skipReason) return
    workers = [
      await startWorker(uniqueKey('mw-replay'), { kind: 'redis', name: uniqueKey('mw-cache') }),
    ]
  })
  group.teardown(async () => {
    await Promise.all(workers.map(stopWorker))
  })
  group.tap((t) => t.skip(() => skipReason !== false, skipReason || '').timeout(60_000))

  test('not stored, so a retry runs again: {$self}')
    .with(['/charges/failing', '/charges/stream', '/charges/big'])
    .run(async ({ assert }, path) => {
      const [worker] = workers
      const gate = uniqueKey('gate')
      const key = crypto.randomUUID()
      await openGate(worker, gate)
      const first = await call(worker.url, path, keyed(key, { a: 1 }, gate, '5'))
      const second = await call(worker.url, path, keyed(key, { a: 1 }, gate, '5'))
      assert.isNull(second.headers.get('idempotency-replayed'))
      assert.equal(second.status, first.status)
      assert.notDeepEqual(second.body, first.body)
      assert.equal(await entered(worker, gate), 2)
    })

  test('a cache that is down: 503 with nothing internal, the route does not run', async ({
    assert,
  }) => {
    const [worker] = workers
    const gate = uniqueKey('gate')
    await openGate(worker, gate)
    const reply = await call(
      worker.url,
      '/charges/down',
      keyed(crypto.randomUUID(), { a: 1 }, gate, '6')
    )
    assert.equal(reply.status, 503)
    assert.deepEqual(reply.body, {
      errors: [{ message: 'The lock store failed', code: 'E_LOCK_STORAGE_ERROR' }],
    })
    assert.equal(await entered(worker, gate), 0)
  })

  test('an unknown cache store: E_INVALID_LOCK_CONFIG naming it', async ({ assert }) => {
    const [worker] = workers
    const gate = uniqueKey('gate')
    await openGate(worker, gate)
    const reply = await call(
      worker.url,
      '/charges/unknown',
      keyed(crypto.randomUUID(), { a: 1 }, gate, '7')
    )
    assert.equal(reply.status, 500)
    assert.include(reply.body.message, 'Unknown cache store "nope"')
    assert.include(reply.body.message, '"shared", "down"')
    assert.equal(await entered(worker, gate), 0)
  })
})

test.group('Idempotency-Key replay without @adonisjs/cache', () => {
  test('the first request raises E_INVALID_LOCK_CONFIG naming the package', async ({
    assert,
    cleanup,
  }) => {
    const app = await startApp({ default: 'memory', stores: { memory: stores.memory() } })
    cleanup(() => app.close())
    const gate = uniqueKey('gate')
    app.gates.open(gate)
    const reply = await call(app.url, '/charges', keyed(crypto.randomUUID(), { a: 1 }, gate, '8'))
    assert.equal(reply.status, 500)
    assert.include(reply.body.message, '@adonisjs/cache')
    assert.instanceOf(app.errors[0], E_INVALID_LOCK_CONFIG)
    assert.equal(app.gates.stats(gate).entered, 0)
  })
})
