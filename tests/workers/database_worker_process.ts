import { fileURLToPath } from 'node:url'
import type { ContendResult, DatabaseWorkerTask } from './database_lock_worker.ts'
import { contend as contendIn, WorkerProcess } from './worker_process.ts'

const script = './database_lock_worker.ts'
const skewedClock = fileURLToPath(new URL('./skewed_clock.ts', import.meta.url))

export type DatabaseWorkerProcess = WorkerProcess

/**
 * database_lock_worker.ts children, their clock shifted by `clockOffset` ms
 */
export const DatabaseWorkerProcess = {
  start(
    task: DatabaseWorkerTask,
    started: WorkerProcess[],
    options: { clockOffset?: number } = {}
  ): Promise<WorkerProcess> {
    return WorkerProcess.start(script, task, started, {
      preload: options.clockOffset ? [skewedClock] : [],
      env: { CLOCK_OFFSET_MS: String(options.clockOffset ?? 0) },
    })
  },
}

/**
 * Runs a `contend` task in `processes` workers let go together
 */
export function contend(
  processes: number,
  task: Omit<DatabaseWorkerTask, 'task'>,
  started: WorkerProcess[]
): Promise<ContendResult[]> {
  return contendIn<ContendResult, DatabaseWorkerTask>(script, processes, task, started)
}
