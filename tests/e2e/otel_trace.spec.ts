/**
 * In a real AdonisJS app traced by @adonisjs/otel: a request that waits
 * for a lock held by another request shows the wait as a `lock.acquire`
 * child span of its HTTP span
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { test } from '@japa/runner'
import { sleep } from '../../src/wait.ts'
import type { SpanRecord } from '../fixtures/telemetry/app.ts'
import { pollUntil } from '../helpers/poll.ts'

const SERVER_KIND = 1

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    'node_modules/.bin/node',
    ['--import=@poppinss/ts-exec', 'tests/fixtures/telemetry/server.ts'],
    { stdio: ['pipe', 'pipe', 'inherit'] }
  )
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolve({ url: JSON.parse(line).url, child })
    )
    child.once('exit', (code) => reject(new Error(`the app exited early with code ${code}`)))
  })
}

async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init)
  return (await response.json()) as T
}

async function stopServer(child: ChildProcess) {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.stdin!.end()
  await exited
}

test.group('OpenTelemetry | app with @adonisjs/otel', () => {
  test('a request waiting for a lock shows a lock.acquire child span covering the wait', async ({
    assert,
    cleanup,
  }) => {
    const { url, child } = await startServer()
    cleanup(() => stopServer(child))
    const entered = async (gate: string) => {
      const stats = await getJson<{ entered: boolean }>(`${url}/_gates/${gate}`)
      return stats.entered
    }
    const open = (gate: string) => fetch(`${url}/_gates/${gate}/open`, { method: 'POST' })
    const post = (gate: string) =>
      getJson(`${url}/orders/42/process`, { method: 'POST', headers: { 'x-gate': gate } })

    const holder = post('holder')
    assert.isTrue(await pollUntil(() => entered('holder'), 20_000, 10))
    await sleep(50)
    const waiter = post('waiter')
    await open('waiter')
    assert.isTrue(await pollUntil(() => entered('waiter'), 20_000, 10))
    /**
     * The waiter is in its acquire from here on: the holder lets go
     * at least 300 ms later
     */
    await sleep(300)
    await open('holder')
    assert.deepEqual(await holder, { acquired: true })
    assert.deepEqual(await waiter, { acquired: true })

    let spans: SpanRecord[] = []
    const complete = await pollUntil(
      async () => {
        spans = await getJson<SpanRecord[]>(`${url}/_spans`)
        return spans.filter((span) => span.name === 'POST /orders/:id/process').length === 2
      },
      20_000,
      20
    )
    assert.isTrue(complete)

    const requests = spans.filter((span) => span.name === 'POST /orders/:id/process')
    const acquires = spans.filter((span) => span.name === 'lock.acquire')
    const childOf = (request: SpanRecord, name: string) =>
      spans.find((span) => span.name === name && span.parentSpanId === request.spanId)!

    for (const request of requests) {
      assert.equal(request.kind, SERVER_KIND)
      const acquire = childOf(request, 'lock.acquire')
      assert.exists(acquire)
      assert.equal(acquire.traceId, request.traceId)
      assert.equal(acquire.attributes['lock.acquire.outcome'], 'acquired')
      assert.equal(acquire.attributes['lock.key.prefix'], 'order')
    }
    assert.lengthOf(acquires, 2)

    /**
     * The waiter's acquire started before the holder released and ended
     * after it; its recorded wait covers that span of time
     */
    const [first, second] = requests.toSorted((a, b) => a.start - b.start)
    const released = childOf(first, 'lock.hold')
    const waited = childOf(second, 'lock.acquire')
    assert.isAtMost(waited.start, released.end)
    /**
     * On the memory store the waiter is woken inside the release's store
     * call: its acquire may end a fraction of a ms before the release
     * returns and ends the hold span
     */
    assert.isAtLeast(waited.end, released.end - 1)
    const waitedMs = (waited.attributes['lock.wait.duration'] as number) * 1000
    assert.isAtLeast(waitedMs, 290)
    assert.isAtLeast(waitedMs, released.end - waited.start - 1)
    assert.isAtLeast(second.end - second.start, waitedMs)
  }).timeout(60_000)

  test('a request the lock middleware refuses is marked on its HTTP span', async ({
    assert,
    cleanup,
  }) => {
    const { url, child } = await startServer()
    cleanup(() => stopServer(child))
    const pay = () =>
      fetch(`${url}/payments`, {
        method: 'POST',
        headers: { 'x-gate': 'first', 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 10 }),
      })
    const first = pay()
    const entered = async () => {
      const gate = await getJson<{ entered: boolean }>(`${url}/_gates/first`)
      return gate.entered
    }
    assert.isTrue(await pollUntil(entered, 20_000, 10))
    const duplicate = await pay()
    assert.equal(duplicate.status, 409)
    await fetch(`${url}/_gates/first/open`, { method: 'POST' })
    const original = await first
    assert.equal(original.status, 200)

    let spans: SpanRecord[] = []
    assert.isTrue(
      await pollUntil(
        async () => {
          spans = await getJson<SpanRecord[]>(`${url}/_spans`)
          return spans.filter((span) => span.name === 'POST /payments').length === 2
        },
        20_000,
        20
      )
    )
    const marked = spans.filter((span) => span.attributes['lock.refusal.status'] === 409)
    assert.lengthOf(marked, 1)
    assert.equal(marked[0].name, 'POST /payments')
    assert.equal(marked[0].attributes['lock.refusal.code'], 'E_LOCK_TIMEOUT')
  }).timeout(60_000)
})
