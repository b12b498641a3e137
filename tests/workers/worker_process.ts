import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))

/**
 * A worker script of this folder run in a child process, driven line by
 * line: it prints `ready`, waits for `go` on stdin, and prints one JSON
 * line with its result
 */
export class WorkerProcess {
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
   * Starts `script` (a file of this folder) with the JSON task as its
   * argument, and waits until it says `ready`. `started` collects the
   * worker, for the test to stop it when it fails.
   */
  static async start<Task>(
    script: string,
    task: Task,
    started: WorkerProcess[],
    options: { preload?: string[]; env?: NodeJS.ProcessEnv } = {}
  ): Promise<WorkerProcess> {
    const imports = ['@poppinss/ts-exec', ...(options.preload ?? [])].map(
      (file) => `--import=${file}`
    )
    const child = spawn(
      process.execPath,
      [...imports, fileURLToPath(new URL(script, import.meta.url)), JSON.stringify(task)],
      { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } }
    )
    const worker = new WorkerProcess(child)
    started.push(worker)
    const line = await worker.#nextLine()
    if (line !== 'ready') throw new Error(`worker said ${JSON.stringify(line)} instead of ready`)
    return worker
  }

  go() {
    this.#child.stdin!.write('go\n')
  }

  /**
   * Sends a signal to the worker (SIGSTOP / SIGCONT to pause it)
   */
  signal(name: NodeJS.Signals) {
    this.#child.kill(name)
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
 * Runs the `contend` task of `script` in `processes` workers let go together
 */
export async function contend<Result, Task extends { task: string }>(
  script: string,
  processes: number,
  task: Omit<Task, 'task'>,
  started: WorkerProcess[]
): Promise<Result[]> {
  const workers = await Promise.all(
    Array.from({ length: processes }, () =>
      WorkerProcess.start(script, { ...task, task: 'contend' }, started)
    )
  )
  workers.forEach((worker) => worker.go())
  return Promise.all(workers.map((worker) => worker.result<Result>()))
}
