import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ContendResult, DatabaseWorkerTask } from './database_lock_worker.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const script = fileURLToPath(new URL('./database_lock_worker.ts', import.meta.url))
const skewedClock = fileURLToPath(new URL('./skewed_clock.ts', import.meta.url))

/**
 * A database_lock_worker.ts child process, driven line by line
 */
export class DatabaseWorkerProcess {
  #child: ChildProcess
  #lines: AsyncIterator<string>
  #stderr = ''
  #exited: Promise<number | null>

  private constructor(child: ChildProcess) {
    this.#child = child
    this.#lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
    child.stderr!.on('data', (chunk) => (this.#stderr = (this.#stderr + chunk).slice(-8000)))
    this.#exited = once(child, 'exit').then(([code]) => code as number | null)
  }

  /**
   * Starts a worker, its clock shifted by `clockOffset` ms, and waits
   * until it says `ready`. `started` collects it, for the test to kill it
   * when it fails.
   */
  static async start(
    task: DatabaseWorkerTask,
    started: DatabaseWorkerProcess[],
    options: { clockOffset?: number } = {}
  ): Promise<DatabaseWorkerProcess> {
    const preload = options.clockOffset ? [`--import=${skewedClock}`] : []
    const child = spawn(
      process.execPath,
      ['--import=@poppinss/ts-exec', ...preload, script, JSON.stringify(task)],
      {
        cwd: root,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, CLOCK_OFFSET_MS: String(options.clockOffset ?? 0) },
      }
    )
    const worker = new DatabaseWorkerProcess(child)
    started.push(worker)
    const line = await worker.#nextLine()
    if (line !== 'ready') throw new Error(`worker said ${JSON.stringify(line)} instead of ready`)
    return worker
  }

  go() {
    this.#child.stdin!.write('go\n')
  }

  /**
   * The JSON the worker prints once done; rejects when it fails
   */
  async result<T>(): Promise<T> {
    const line = await this.#nextLine()
    const code = await this.#exited
    if (code !== 0) throw new Error(`worker exited with ${code}:\n${this.#stderr}`)
    return JSON.parse(line) as T
  }

  /**
   * Kills the worker if it still runs, and waits for its exit
   */
  async stop() {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill()
    await this.#exited
  }

  async #nextLine(): Promise<string> {
    const { value, done } = await this.#lines.next()
    if (done) {
      const code = await this.#exited
      throw new Error(`worker exited with ${code} before answering:\n${this.#stderr}`)
    }
    return value
  }
}

/**
 * Runs a `contend` task in `processes` workers let go together
 */
export async function contend(
  processes: number,
  task: Omit<DatabaseWorkerTask, 'task'>,
  started: DatabaseWorkerProcess[]
): Promise<ContendResult[]> {
  const workers = await Promise.all(
    Array.from({ length: processes }, () =>
      DatabaseWorkerProcess.start({ ...task, task: 'contend' }, started)
    )
  )
  workers.forEach((worker) => worker.go())
  return Promise.all(workers.map((worker) => worker.result<ContendResult>()))
}
