/**
 * Many workers in several processes fight for one key. Each critical
 * section is timed on the shared clock; afterwards the parent checks that
 * no two of them overlapped, whoever ran them.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BenchTargets, Contender, RetryMode } from '../contenders/contender.ts'
import { RoundTrips } from '../lib/round_trip.ts'
import { contenderCommands, type Services } from '../lib/services.ts'
import { Samples, median, sharedClock } from '../lib/stats.ts'
import type { WorkerReply, WorkerRequest } from '../workers/contended_worker.ts'

export interface ContendedSpec {
  rounds: number
  windowMs: number
  /**
   * Workers in all, spread over `processes` (memory stores live in one
   * process, so their workers all run in one)
   */
  workers: number
  processes: number
  criticalSectionMs: number
  /**
   * How long waiters still queued at the end of a window may take to get
   * through before they are counted as stuck
   */
  drainMs: number
}

/**
 * What one window of one contender showed
 */
export interface ContendedWindow {
  windowMs: number
  sections: number
  handoffs: number
  served: number
  waits: Samples
  overlaps: number
  clientCalls: number
  serverCalls: number | null
  gaveUp: number
  releaseErrors: number
  stuck: number
  /**
   * `s`: the mean critical section of the window, in ms
   */
  criticalMs: number
  /**
   * `c`: one raw round trip of the backend, measured just before the
   * window, in ms
   */
  roundTripMs: number
}

export interface ContendedRow {
  contender: Contender
  mode: RetryMode
  workers: number
  processes: number
  windows: ContendedWindow[]
  errors: string[]
  error?: string
}

export interface ContendedResult {
  spec: ContendedSpec
  rows: ContendedRow[]
}

const WORKER_FILE = new URL('../workers/contended_worker.ts', import.meta.url)
const ROOT = new URL('../../', import.meta.url)

/**
 * One child process, answering each request with one reply
 */
class WorkerProcess {
  #child: ChildProcess
  #replies: WorkerReply[] = []
  #waiter: ((reply: WorkerReply) => void) | undefined
  #exited = false

  constructor() {
    this.#child = fork(WORKER_FILE, [], {
      cwd: ROOT,
      execArgv: ['--import=@poppinss/ts-exec'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.#child.on('message', (reply: WorkerReply) => {
      if (this.#waiter) this.#waiter(reply)
      else this.#replies.push(reply)
    })
    this.#child.once('exit', (code) => {
      this.#exited = true
      this.#waiter?.({ type: 'error', message: `worker process exited (${code})` })
    })
  }

  request(request: WorkerRequest, timeoutMs: number): Promise<WorkerReply> {
    if (this.#exited) return Promise.resolve({ type: 'error', message: 'worker process is gone' })
    this.#child.send(request)
    const queued = this.#replies.shift()
    if (queued) return Promise.resolve(queued)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined
        resolve({ type: 'error', message: `no reply to "${request.type}" in ${timeoutMs} ms` })
      }, timeoutMs)
      this.#waiter = (reply) => {
        clearTimeout(timer)
        this.#waiter = undefined
        resolve(reply)
      }
    })
  }

  async stop() {
    if (this.#exited) return
    const exited = new Promise((resolve) => this.#child.once('exit', resolve))
    this.#child.disconnect()
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}

interface Section {
  worker: number
  waitStart: number
  start: number
  end: number
}

/**
 * Critical sections that started while another was still running
 */
export function countOverlaps(sections: Section[]): number {
  const sorted = [...sections].sort((a, b) => a.start - b.start)
  let overlaps = 0
  let busyUntil = Number.NEGATIVE_INFINITY
  for (const section of sorted) {
    if (section.start < busyUntil) overlaps++
    busyUntil = Math.max(busyUntil, section.end)
  }
  return overlaps
}

function summarise(
  replies: Array<Extract<WorkerReply, { type: 'result' }>>,
  startAt: number,
  endAt: number,
  serverCalls: number | null,
  roundTripMs: number
): ContendedWindow {
  const sections: Section[] = []
  const waits = new Samples()
  for (const reply of replies) {
    for (let index = 0; index < reply.sections.length; index += 4) {
      const [worker, waitStart, start, end] = reply.sections.slice(index, index + 4)
      sections.push({ worker, waitStart, start, end })
    }
    /**
     * A wait still going at the end of the window counts until then, so
     * a starved worker shows in the tail
     */
    for (const waitStart of reply.pending) if (waitStart < endAt) waits.push(endAt - waitStart)
  }
  for (const section of sections) {
    if (section.waitStart < endAt) waits.push(Math.min(section.start, endAt) - section.waitStart)
  }
  const inWindow = sections
    .filter((section) => section.start >= startAt && section.start < endAt)
    .sort((a, b) => a.start - b.start)
  let handoffs = 0
  for (let index = 1; index < inWindow.length; index++) {
    if (inWindow[index].worker !== inWindow[index - 1].worker) handoffs++
  }
  const total = (pick: (reply: Extract<WorkerReply, { type: 'result' }>) => number) =>
    replies.reduce((sum, reply) => sum + pick(reply), 0)
  return {
    windowMs: endAt - startAt,
    sections: inWindow.length,
    handoffs,
    served: new Set(inWindow.map((section) => section.worker)).size,
    waits,
    overlaps: countOverlaps(sections),
    clientCalls: total((reply) => reply.storeCalls),
    serverCalls,
    gaveUp: total((reply) => reply.gaveUp),
    releaseErrors: total((reply) => reply.releaseErrors),
    stuck: total((reply) => reply.stuck),
    criticalMs:
      inWindow.reduce((sum, section) => sum + (section.end - section.start), 0) / inWindow.length,
    roundTripMs,
  }
}

/**
 * Critical sections per second one lock can serve at best, one after the
 * other: each takes `s` ms, and the next holder learns of the release no
 * sooner than one round trip (`c` ms) later
 */
export function ceilingPerSecond(criticalMs: number, roundTripMs: number): number {
  return 1000 / (criticalMs + roundTripMs)
}

/**
 * Critical sections/s of the windows as a share of their ceilings (0..1),
 * each window against the `s` and `c` measured for it
 */
export function shareOfCeiling(
  windows: Array<Pick<ContendedWindow, 'sections' | 'windowMs' | 'criticalMs' | 'roundTripMs'>>
): number {
  let sections = 0
  let possible = 0
  for (const window of windows) {
    if (!Number.isFinite(window.criticalMs)) continue
    sections += window.sections
    possible += (window.windowMs / 1000) * ceilingPerSecond(window.criticalMs, window.roundTripMs)
  }
  return possible === 0 ? Number.NaN : sections / possible
}

/**
 * Twice a fair share: with `workers` taking turns, each waits for the
 * `workers` critical sections (and hand-overs) of a full turn
 */
export function waitLimitMs(workers: number, criticalMs: number, roundTripMs: number): number {
  return 2 * workers * (criticalMs + roundTripMs)
}

export async function runContended(
  spec: ContendedSpec,
  contenders: Contender[],
  services: Services,
  progress: (line: string) => void
): Promise<ContendedResult> {
  const rows: ContendedRow[] = contenders.flatMap((contender) =>
    contender.modes.map((mode) => {
      const processes = contender.backend === 'memory' ? 1 : spec.processes
      return {
        contender,
        mode,
        processes,
        workers: spec.workers,
        windows: [],
        errors: [],
      }
    })
  )
  const pool = Array.from({ length: spec.processes }, () => new WorkerProcess())
  const roundTrips = new RoundTrips(services.targets)
  try {
    for (let round = 0; round < spec.rounds; round++) {
      const order = rows.map((_, index) => rows[(index + round) % rows.length])
      for (const row of order) {
        if (row.error) continue
        const window = await runWindow(spec, row, pool, services, roundTrips, `${round}`)
        if ('error' in window) {
          row.error = window.error
          continue
        }
        row.windows.push(window.result)
        for (const message of window.errors) {
          if (!row.errors.includes(message)) row.errors.push(message)
        }
        const last = window.result
        progress(
          `contended round ${round + 1}/${spec.rounds} ${row.contender.id} (${row.mode}): ` +
            `${Math.round((last.sections / last.windowMs) * 1000)} cs/s, ` +
            `served ${last.served}/${row.workers}, p99 wait ${last.waits.quantile(0.99).toFixed(1)} ms, ` +
            `overlaps ${last.overlaps}, ${Math.round(shareOfCeiling([last]) * 100)} % of the ceiling`
        )
      }
    }
  } finally {
    await Promise.all(pool.map((worker) => worker.stop()))
    await roundTrips.close()
  }
  return { spec, rows }
}

async function runWindow(
  spec: ContendedSpec,
  row: ContendedRow,
  pool: WorkerProcess[],
  services: Services,
  roundTrips: RoundTrips,
  round: string
): Promise<{ result: ContendedWindow; errors: string[] } | { error: string }> {
  const used = pool.slice(0, row.processes)
  const roundTripMs = await roundTrips.measure(row.contender.backend)
  const targets: BenchTargets = services.targets
  const opened = await Promise.all(
    used.map((worker) =>
      worker.request(
        { type: 'open', contenderId: row.contender.id, mode: row.mode, targets },
        30_000
      )
    )
  )
  const failed = opened.find((reply) => reply.type === 'error')
  if (failed && failed.type === 'error') {
    await closeOpened(used, opened)
    return { error: failed.message }
  }

  const redis = row.contender.backend === 'redis'
  if (redis) await services.resetRedisStats()
  const startAt = sharedClock() + 100
  const endAt = startAt + spec.windowMs
  const perProcess = spec.workers / row.processes
  const replies = used.map((worker, index) =>
    worker.request(
      {
        type: 'go',
        key: `bench:contended:${row.contender.id}:${row.mode}:${round}`,
        startAt,
        endAt,
        workers: perProcess,
        workerOffset: index * perProcess,
        criticalSectionMs: spec.criticalSectionMs,
        drainMs: spec.drainMs,
      },
      spec.windowMs + spec.drainMs + 30_000
    )
  )
  let serverCalls: number | null = null
  if (redis) {
    await sleep(Math.max(0, endAt - sharedClock()))
    serverCalls = contenderCommands(await services.redisCommandStats())
  }
  const results = await Promise.all(replies)
  const done = results.filter(
    (reply): reply is Extract<WorkerReply, { type: 'result' }> => reply.type === 'result'
  )
  if (done.length !== results.length) {
    const error = results.find((reply) => reply.type === 'error')
    return { error: error && error.type === 'error' ? error.message : 'unexpected reply' }
  }
  return {
    result: summarise(done, startAt, endAt, serverCalls, roundTripMs),
    errors: done.flatMap((reply) => reply.errors),
  }
}

/**
 * A contender that opened in one process but not the other is closed by
 * running it for no time
 */
async function closeOpened(workers: WorkerProcess[], opened: WorkerReply[]) {
  await Promise.all(
    workers.map((worker, index) => {
      if (opened[index].type !== 'opened') return
      const now = sharedClock()
      return worker.request(
        {
          type: 'go',
          key: 'bench:contended:closing',
          startAt: now,
          endAt: now,
          workers: 0,
          workerOffset: 0,
          criticalSectionMs: 0,
          drainMs: 0,
        },
        30_000
      )
    })
  )
}

/**
 * Per-round ratio of this row's critical sections/s to the baseline's,
 * the median over rounds
 */
export function contendedRatio(row: ContendedRow, baseline: ContendedRow): number {
  return median(
    row.windows.map((window, round) => {
      const base = baseline.windows[round]
      if (!base) return Number.NaN
      return window.sections / window.windowMs / (base.sections / base.windowMs)
    })
  )
}

export function mergeWindows(row: ContendedRow) {
  const windows = row.windows
  const seconds = windows.reduce((total, window) => total + window.windowMs, 0) / 1000
  const sections = windows.reduce((total, window) => total + window.sections, 0)
  const waits = new Samples()
  for (const window of windows) waits.append(window.waits)
  const serverCalls = windows.every((window) => window.serverCalls !== null)
    ? windows.reduce((total, window) => total + window.serverCalls!, 0)
    : null
  const criticalMs =
    windows.reduce((total, window) => total + window.criticalMs * window.sections, 0) / sections
  const roundTripMs = median(windows.map((window) => window.roundTripMs))
  return {
    csPerSecond: sections / seconds,
    criticalMs,
    roundTripMs,
    ceiling: ceilingPerSecond(criticalMs, roundTripMs),
    share: shareOfCeiling(windows),
    waitLimit: waitLimitMs(row.workers, criticalMs, roundTripMs),
    waits,
    handoffsPerSecond: windows.reduce((total, window) => total + window.handoffs, 0) / seconds,
    served: Math.min(...windows.map((window) => window.served)),
    waitP50: waits.quantile(0.5),
    waitP99: waits.quantile(0.99),
    clientCallsPerCs: windows.reduce((total, window) => total + window.clientCalls, 0) / sections,
    serverCallsPerCs: serverCalls === null ? null : serverCalls / sections,
    overlaps: windows.reduce((total, window) => total + window.overlaps, 0),
    gaveUp: windows.reduce((total, window) => total + window.gaveUp, 0),
    releaseErrors: windows.reduce((total, window) => total + window.releaseErrors, 0),
    stuck: windows.reduce((total, window) => total + window.stuck, 0),
  }
}
