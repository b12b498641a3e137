import { E_LOCK_STORAGE_ERROR } from '../../../src/errors.ts'
import { sleep } from '../../../src/wait.ts'

export interface Outcome<T> {
  value?: T
  error?: unknown
  /**
   * ms from the call to its settlement
   */
  elapsed: number
}

/**
 * Calls `action` and records how it settled and how long it took
 */
export async function timed<T>(action: () => Promise<T>): Promise<Outcome<T>> {
  const startedAt = Date.now()
  try {
    const value = await action()
    return { value, elapsed: Date.now() - startedAt }
  } catch (error) {
    return { error, elapsed: Date.now() - startedAt }
  }
}

export function isStorageError(outcome: Outcome<unknown>): boolean {
  return outcome.error instanceof E_LOCK_STORAGE_ERROR
}

/**
 * How an outcome reads in an assertion message
 */
export function describeOutcome(outcome: Outcome<unknown>): string {
  const result =
    'error' in outcome
      ? `${(outcome.error as Error)?.name}: ${(outcome.error as Error)?.message}`
      : JSON.stringify(outcome.value)
  return `${result} after ${outcome.elapsed} ms`
}

/**
 * Asks until `check` answers without throwing (the server is back), for
 * at most `timeout` ms
 */
export async function onceBack<T>(check: () => Promise<T>, timeout = 15_000): Promise<T> {
  const deadline = Date.now() + timeout
  while (true) {
    try {
      return await check()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(100)
    }
  }
}
