/**
 * Several processes contend for one lock on a real server while the test
 * SIGKILLs holders in the middle of their critical section. The others
 * take over only once the victim's ttl has run out, never two live holders
 * overlap, and fencing tokens keep increasing across every takeover.
 */
import { test } from '@japa/runner'
import { SERVICES, serviceAvailable, uniqueKey, type ServiceName } from '../helpers/services.ts'
import { openTestDatabase } from '../helpers/databases.ts'
import type { BackendSpec } from './helpers/backends.ts'
import { count, highest } from './helpers/figures.ts'
import { WorkerPool, type TimedEvent } from './helpers/workers.ts'

const PROCESSES = 4
const KILLS = 2
const TTL = 1000
/**
 * Critical sections last this long and until the test acks them; the
 * victim's is never acked
 */
const HOLD = 100
/**
 * Acquisitions between kills, and after the last one
 */
const BETWEEN_KILLS = 4

type Acquired = Extract<TimedEvent, { type: 'acquired' }>

interface Backend {
  label: string
  service: ServiceName
  open(): Promise<{ spec: BackendSpec; close(): Promise<void> }>
}

const BACKENDS: Backend[] = [
  {
    label: 'Redis',
    service: 'redis',
    async open() {
      return { spec: { kind: 'redis', port: SERVICES.redis.port }, close: async () => {} }
    },
  },
  {
    label: 'PostgreSQL',
    service: 'postgres',
    async open() {
      const database = await openTestDatabase('postgres')
      return {
        spec: { kind: 'database', config: database.config as any, tableName: database.tableName },
        close: () => database.close(),
      }
    },
  },
  {
    label: 'MariaDB',
    service: 'mariadb',
    async open() {
      const database = await openTestDatabase('mysql')
      return {
        spec: { kind: 'database', config: database.config as any, tableName: database.tableName },
        close: () => database.close(),
      }
    },
  },
]

for (const backend of BACKENDS) {
  const available = await serviceAvailable(backend.service)
  test.group(`Reliability | SIGKILLed holders on ${backend.label}`, (group) => {
    group.tap((t) => {
      t.skip(!available, `${backend.label} is not reachable`)
      t.timeout(90_000)
    })

    test(`${PROCESSES} processes, ${KILLS} holders killed mid-section: takeover only after the ttl, 0 overlaps, tokens increase`, async ({
      assert,
      cleanup,
    }) => {
      const { spec, close } = await backend.open()
      cleanup(close)
      const pool = new WorkerPool()
      cleanup(() => pool.destroy())

      await pool.start(PROCESSES, {
        backend: spec,
        key: uniqueKey('kill'),
        ttl: TTL,
        holdMs: HOLD,
        retry: { delay: 50, timeout: 30_000 },
      })
      count('processes', PROCESSES)

      /**
       * Kill the holder of every BETWEEN_KILLS-th acquisition as soon as it
       * reports it; stop once the last kill is followed by as many more
       */
      const victims: Acquired[] = []
      const finished = new Promise<void>((resolve) => {
        let since = 0
        pool.onEvent = (event) => {
          if (event.type !== 'acquired') return
          if (++since <= BETWEEN_KILLS || victims.length === KILLS) {
            pool.ack(event.worker)
            if (since > BETWEEN_KILLS) resolve()
            return
          }
          since = 0
          victims.push(event)
          pool.kill(event.worker)
        }
      })
      pool.go()
      await finished
      await pool.stop()

      const acquisitions = pool.events
        .filter((event): event is Acquired => event.type === 'acquired')
        .sort((a, b) => a.at - b.at)
      const failures = pool.events.filter((event) => event.type === 'failed')
      assert.deepEqual(failures, [], 'no acquire failed or timed out')

      /**
       * Each killed holder died holding the lock: it never reached the end
       * of that critical section
       */
      for (const victim of victims) {
        const after = pool.events.slice(pool.events.indexOf(victim) + 1)
        assert.notExists(
          after.find((event) => event.worker === victim.worker),
          'the victim reported nothing after its acquisition'
        )
      }

      let overlaps = 0
      let takeovers = 0
      for (let index = 1; index < acquisitions.length; index++) {
        const previous = acquisitions[index - 1]
        const next = acquisitions[index]
        if (victims.includes(previous)) {
          /**
           * The store's expiry is never before the lock's own view of it
           */
          assert.isAtLeast(
            next.at,
            previous.expiresAt,
            `the lock of killed pid ${previous.pid} was taken over before its ttl ran out`
          )
          assert.notEqual(next.worker, previous.worker)
          highest('takeoverLatencyMs', next.at - previous.expiresAt)
          takeovers++
          continue
        }
        const released = pool.events
          .slice(pool.events.indexOf(previous) + 1)
          .find(
            (event): event is Extract<TimedEvent, { type: 'releasing' }> =>
              event.worker === previous.worker && event.type === 'releasing'
          )
        if (!released || released.at > next.at) overlaps++
      }
      assert.equal(overlaps, 0, 'live holders overlapped')
      assert.equal(takeovers, KILLS)

      const tokens = acquisitions.map((event) => event.token!)
      for (let index = 1; index < tokens.length; index++) {
        assert.isAbove(tokens[index], tokens[index - 1], `token ${index} did not increase`)
      }
      assert.isAtLeast(acquisitions.length, (KILLS + 1) * BETWEEN_KILLS)

      count('kills', KILLS)
      count('killAcquisitions', acquisitions.length)
    })
  })
}
