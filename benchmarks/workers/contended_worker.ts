/**
 * A process of the contended scenario: opens one contender's session (one
 * connection or pool, as an application would), then runs N workers that
 * all loop acquire → critical section → release on the same key, and
 * reports every critical section it saw, timed on the shared clock.
 *
 * Driven over IPC by benchmarks/scenarios/contended.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { BenchTargets, LockSession, Release, RetryMode } from '../contenders/contender.ts'
import { findContender } from '../lib/compare.ts'
import { sharedClock } from '../lib/stats.ts'
import { callsOf, countStoreCalls } from '../lib/store_calls.ts'

export type WorkerRequest =
  | { type: 'open'; contenderId: string; mode: RetryMode; targets: BenchTargets }
  | {
      type: 'go'
      key: string
      startAt: number
      endAt: number
      workers: number
      workerOffset: number
      criticalSectionMs: number
      drainMs: number
    }

export type WorkerReply =
  | { type: 'opened' }
  | { type: 'error'; message: string }
  | {
      type: 'result'
      /**
       * Flattened [worker, waitStart, csStart, csEnd] of every critical
       * section, on the shared clock (ms)
       */
      sections: number[]
      /**
       * Wait starts of workers still waiting when they stopped
       */
      pending: number[]
      gaveUp: number
      releaseErrors: number
      errors: string[]
      storeCalls: number
      stuck: number
    }

countStoreCalls()

let session: LockSession | undefined
let calls = () => 0

function reply(message: WorkerReply) {
  process.send!(message)
}

async function open(request: Extract<WorkerRequest, { type: 'open' }>) {
  const contender = await findContender(request.contenderId)
  calls = () => callsOf(contender.backend)
  session = await contender.open(request.targets, request.mode)
  reply({ type: 'opened' })
}

async function go(request: Extract<WorkerRequest, { type: 'go' }>) {
  const current = session!
  const { key, startAt, endAt, criticalSectionMs } = request
  const sections: number[] = []
  /**
   * Workers waiting for the lock, by the time they started to. Those still
   * there at the end never got it.
   */
  const waiting = new Map<number, number>()
  const errors = new Set<string>()
  let gaveUp = 0
  let releaseErrors = 0
  let callsAtEnd: number | undefined

  await sleep(Math.max(0, startAt - sharedClock()))
  const callsAtStart = calls()
  const endTimer = setTimeout(() => (callsAtEnd = calls()), Math.max(0, endAt - sharedClock()))

  const worker = async (id: number) => {
    let waitStart = sharedClock()
    while (sharedClock() < endAt) {
      waiting.set(id, waitStart)
      let release: Release
      try {
        release = await current.acquire(key)
      } catch (error) {
        /**
         * The library gave up (its default attempts or timeout): the
         * application tries again, and the wait goes on
         */
        gaveUp++
        errors.add((error as Error).message)
        continue
      }
      waiting.delete(id)
      const csStart = sharedClock()
      await sleep(criticalSectionMs)
      const csEnd = sharedClock()
      try {
        await release()
      } catch (error) {
        releaseErrors++
        errors.add((error as Error).message)
      }
      sections.push(id, waitStart, csStart, csEnd)
      waitStart = sharedClock()
    }
  }

  const ids = Array.from({ length: request.workers }, (_, index) => request.workerOffset + index)
  const running = ids.map((id) => worker(id))
  const drained = await Promise.race([
    Promise.all(running).then(() => true),
    sleep(Math.max(0, endAt + request.drainMs - sharedClock())).then(() => false),
  ])
  clearTimeout(endTimer)
  callsAtEnd ??= calls()

  const stuck = drained ? 0 : waiting.size
  const pending = [...waiting.values()]
  await current.close().catch((error: Error) => errors.add(`close: ${error.message}`))
  session = undefined
  reply({
    type: 'result',
    sections,
    pending,
    gaveUp,
    releaseErrors,
    errors: [...errors].slice(0, 3),
    storeCalls: callsAtEnd - callsAtStart,
    stuck,
  })
}

process.on('message', (request: WorkerRequest) => {
  const task = request.type === 'open' ? open(request) : go(request)
  task.catch((error: Error) => {
    session?.close().catch(() => {})
    session = undefined
    reply({ type: 'error', message: error.message })
  })
})

/**
 * The parent went away: nothing left to do
 */
process.on('disconnect', () => process.exit(0))
