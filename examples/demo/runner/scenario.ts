import { styleText } from 'node:util'
import { get, post, startJob, type Job, type JobEvent, type Reply } from './http.ts'
import { ace, type DemoServer } from './processes.ts'

/**
 * Prints what happens and remembers whether every step behaved as printed
 */
export class Report {
  failures: string[] = []

  title(text: string) {
    console.log(`\n${styleText('bold', text)}`)
  }

  line(text = '') {
    console.log(text ? `   ${text}` : '')
  }

  check(ok: boolean, text: string, failure = text) {
    if (ok) {
      console.log(`   ${styleText('green', '✓')} ${text}`)
    } else {
      console.log(`   ${styleText('red', '✗')} ${failure}`)
      this.failures.push(failure)
    }
  }
}

export interface Context {
  report: Report
  servers: [DemoServer, DemoServer]
  run: string
  aceEnv: NodeJS.ProcessEnv
}

function statusLine(reply: Reply) {
  const retryAfter = reply.headers.get('retry-after')
  const detail =
    reply.status === 200
      ? `processed by pid ${reply.body.processedBy}`
      : `${reply.body?.message ?? reply.body?.errors?.[0]?.message ?? ''}`
  return `${reply.server.name}  ${reply.status}  ${retryAfter ? `Retry-After: ${retryAfter}s  ` : ''}${detail}`
}

function count(replies: Reply[], status: number) {
  return replies.filter((reply) => reply.status === status).length
}

async function totalRuns(ctx: Context, path: string) {
  const counts = await Promise.all(ctx.servers.map((server) => get(server, path)))
  return counts.reduce((sum, { runs }) => sum + runs, 0) as number
}

/**
 * Eight identical requests at once, split over both servers: on the
 * shared store one runs; on the memory store one per server runs
 */
export async function duplicateOrders(ctx: Context, store: string) {
  const { report, servers } = ctx
  const orderId = `A-${ctx.run}`
  report.title(
    `1. Eight identical POST /orders at once, split over both servers ("${store}" store)`
  )
  const replies = await Promise.all(
    Array.from({ length: 8 }, (_, index) =>
      post(servers[index % 2], '/orders', { orderId, ms: 2000 })
    )
  )
  for (const reply of replies) report.line(statusLine(reply))
  const runs = await totalRuns(ctx, `/orders/${orderId}/runs`)
  const retryAfter = replies.every(
    (r) => r.status !== 409 || Number(r.headers.get('retry-after')) > 0
  )
  report.check(
    count(replies, 200) === 1 && count(replies, 409) === 7 && retryAfter && runs === 1,
    'one 200, seven 409 with Retry-After, and the route ran once',
    `expected one 200 and seven 409 with Retry-After and one run, got ${count(replies, 200)} × 200, ${count(replies, 409)} × 409, ${runs} run(s)`
  )

  const memoryOrder = `M-${ctx.run}`
  report.line()
  report.line(
    'The same on the memory store (POST /orders/in-memory): each server sees only its own locks'
  )
  const memoryReplies = await Promise.all(
    Array.from({ length: 8 }, (_, index) =>
      post(servers[index % 2], '/orders/in-memory', { orderId: memoryOrder, ms: 2000 })
    )
  )
  const memoryRuns = await totalRuns(ctx, `/orders/${memoryOrder}/runs`)
  const perServer = servers.map(
    (server) =>
      memoryReplies.filter((reply) => reply.server === server && reply.status === 200).length
  )
  report.check(
    perServer[0] === 1 && perServer[1] === 1 && count(memoryReplies, 409) === 6 && memoryRuns === 2,
    'one 200 per server, six 409: the route ran twice. Share a store between servers.',
    `expected one 200 per server and six 409, got ${perServer.join(' and ')} × 200, ${count(memoryReplies, 409)} × 409, ${memoryRuns} run(s)`
  )
}

/**
 * Workers alternating between the servers take the same lock in turn:
 * each one arrives while the one before holds it
 */
export async function workerQueue(ctx: Context) {
  const { report, servers } = ctx
  const name = `nightly-${ctx.run}`
  const workers = 5
  report.title(`2. Five workers on one lock (jobs.${name}), alternating servers`)
  report.line('each arrives while the one before holds the lock for 600 ms')
  const jobs: Job[] = []
  for (let index = 0; index < workers; index++) {
    if (index > 0) await jobs[index - 1].acquired
    jobs.push(startJob(servers[index % 2], name, `worker ${index + 1}`, 600))
  }
  const runs = await Promise.all(jobs.map((job) => job.done))
  const acquired = runs.map((events) => events.find((e) => e.event === 'acquired'))
  const released = runs.map((events) => events.find((e) => e.event === 'released'))
  acquired.forEach((event, index) => {
    const where = jobs[index].server.name
    report.line(
      event
        ? `${event.worker} on ${where}  waited ${String(event.waitedMs).padStart(4)} ms  fencing token ${event.fencingToken}`
        : `worker ${index + 1} on ${where}  never held the lock`
    )
  })
  const complete = acquired.every(Boolean) && released.every(Boolean)
  const inOrder =
    complete &&
    acquired.every((event, i) => i === 0 || event!.fencingToken! > acquired[i - 1]!.fencingToken!)
  const oneAtATime =
    complete && acquired.every((event, i) => i === 0 || event!.at! >= released[i - 1]!.heldUntil!)
  report.check(
    complete && inOrder && oneAtATime,
    'served in arrival order, one at a time, fencing tokens increasing',
    'the workers were not served one at a time in arrival order with increasing tokens'
  )
}

/**
 * A payment retried with the same Idempotency-Key never runs twice
 */
export async function idempotentPayment(ctx: Context) {
  const { report, servers } = ctx
  const reference = `pay-${ctx.run}`
  const headers = { 'Idempotency-Key': `"${reference}"` }
  const body = { reference, amount: 42, ms: 1000 }
  report.title(`3. POST /payments with Idempotency-Key: "${reference}"`)

  const first = await Promise.all([
    post(servers[0], '/payments', body, headers),
    post(servers[1], '/payments', body, headers),
  ])
  report.line('sent to both servers at once:')
  for (const reply of first) report.line(`  ${statusLine(reply)}`)
  report.check(
    count(first, 200) === 1 && count(first, 409) === 1,
    'one ran, the retry in flight got 409',
    `expected one 200 and one 409, got ${first.map((r) => r.status).join(' and ')}`
  )

  const original = first.find((reply) => reply.status === 200)
  const retry = await post(servers[1], '/payments', body, headers)
  const replayed = retry.headers.get('idempotency-replayed') === 'true'
  report.line('retried once it completed:')
  report.line(`  ${statusLine(retry)}${replayed ? '  Idempotency-Replayed: true' : ''}`)
  const runs = await totalRuns(ctx, `/payments/${reference}/runs`)
  report.check(
    replayed &&
      retry.status === 200 &&
      JSON.stringify(retry.body) === JSON.stringify(original?.body) &&
      runs === 1,
    'the same response, replayed: the route ran once',
    `expected the first response replayed and one run, got ${retry.status} and ${runs} run(s)`
  )
}

/**
 * `node ace lock:status` sees a lock a worker of a server holds
 */
export async function lockStatus(ctx: Context) {
  const { report, servers } = ctx
  const name = `report-${ctx.run}`
  report.title(
    `4. node ace lock:status jobs.${name}, while a worker on ${servers[1].name} holds it`
  )
  const job = startJob(servers[1], name, 'reporter', 60_000)
  let holder: JobEvent
  try {
    holder = await job.acquired
  } catch (error) {
    report.check(false, '', (error as Error).message)
    return
  }
  const status = await ace(['lock:status', `jobs.${name}`], ctx.aceEnv)
  for (const line of status.output.trim().split('\n')) report.line(`  ${line}`)
  report.check(
    status.code === 0 &&
      status.output.includes('is held') &&
      status.output.includes(String(holder.fencingToken)),
    `held, with the worker's fencing token ${holder.fencingToken}`,
    `lock:status did not show the lock held with token ${holder.fencingToken}`
  )

  job.cancel()
  const next = startJob(servers[0], name, 'next', 0)
  const events = await next.done
  report.check(
    events.some((event) => event.event === 'released'),
    `the worker's request closed, its lock was released: the next worker on ${servers[0].name} took it`,
    'the lock was not released when the worker request closed'
  )
}
