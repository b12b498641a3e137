import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { LockWorkerTask, WorkerEvent } from '../workers/lock_worker.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const script = fileURLToPath(new URL('../workers/lock_worker.ts', import.meta.url))
const node = fileURLToPath(new URL('../../../node_modules/.bin/node', import.meta.url))

export type TimedEvent = WorkerEvent & { worker: number }

/**
 * Worker processes of one test. Their events land in one list, in the
 * order the test read them; `onEvent` sees each as it comes.
 */
export class WorkerPool {
  readonly events: TimedEvent[] = []
  readonly killed = new Set<number>()
  #children: ChildProcess[] = []
  #stderr: string[] = []
  #exits: Array<Promise<unknown>> = []
  onEvent: (event: TimedEvent) => void = () => {}

  get size(): number {
    return this.#children.length
  }

  pidOf(worker: number): number {
    return this.#children[worker].pid!
  }

  /**
   * Starts `count` workers and waits until every one is ready
   */
  async start(count: number, task: LockWorkerTask, readyTimeout = 60_000): Promise<void> {
    const ready = Array.from({ length: count }, (_, offset) => {
      const index = this.#children.length
      const child = spawn(node, ['--import=@poppinss/ts-exec', script, JSON.stringify(task)], {
        cwd: root,
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      this.#children.push(child)
      this.#stderr.push('')
      child.stderr!.on('data', (chunk) => {
        this.#stderr[index] = (this.#stderr[index] + chunk).slice(-4000)
      })
      this.#exits.push(once(child, 'exit'))
      return new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          let event: WorkerEvent
          try {
            event = JSON.parse(line)
          } catch {
            return
          }
          const timed = { ...event, worker: index }
          if (event.type === 'ready') return resolve()
          this.events.push(timed)
          this.onEvent(timed)
        })
        child.once('exit', (code, signal) =>
          reject(new Error(`worker ${offset} exited (${code ?? signal}):\n${this.#stderr[index]}`))
        )
      })
    })
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('workers did not get ready in time')), readyTimeout)
    })
    try {
      await Promise.race([Promise.all(ready), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  go() {
    for (const child of this.#children) child.stdin!.write('go\n')
  }

  /**
   * Lets a worker end its critical section
   */
  ack(worker: number) {
    const child = this.#children[worker]
    if (child.exitCode === null && child.signalCode === null) child.stdin!.write('ack\n')
  }

  kill(worker: number) {
    this.killed.add(worker)
    this.#children[worker].kill('SIGKILL')
  }

  /**
   * Asks the live workers to stop after their current round, and waits
   * for every one to exit; SIGKILL after `timeout`
   */
  async stop(timeout = 20_000): Promise<void> {
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) child.stdin!.end('stop\n')
    }
    const timer = setTimeout(() => this.destroy(), timeout)
    await Promise.all(this.#exits)
    clearTimeout(timer)
    const failed = this.#children.findIndex(
      (child, index) => !this.killed.has(index) && child.exitCode !== 0
    )
    if (failed !== -1) {
      throw new Error(
        `worker ${failed} exited with ${this.#children[failed].exitCode ?? this.#children[failed].signalCode}:\n${this.#stderr[failed]}`
      )
    }
  }

  /**
   * SIGKILL to whatever still runs
   */
  destroy() {
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  }
}
