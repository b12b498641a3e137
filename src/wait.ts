import { E_LOCK_STORAGE_ERROR } from './errors.ts'
import type { AcquireResult } from './types.ts'

/**
 * Timer helpers that honour an AbortSignal and reject with its reason,
 * so callers see the reason they aborted with.
 */

/**
 * With a timeout, a store call of `acquire()` gets at least this long to
 * answer, even when it starts right at the deadline
 */
export const STORE_ANSWER_GRACE = 1000

/**
 * Waits `ms`, or rejects with `signal.reason` when aborted first
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return settleWithin(null, ms, signal).then(() => undefined)
}

/**
 * Resolves with the promise's value, or `undefined` once `ms` have passed
 * (never when Infinity), or rejects with `signal.reason` when aborted
 * first. The timer never outlives the race.
 */
export function settleWithin<T>(
  promise: Promise<T> | null,
  ms: number,
  signal?: AbortSignal
): Promise<T | undefined> {
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise<T | undefined>((resolve, reject) => {
    const finish = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    const onAbort = () => {
      finish()
      reject(signal!.reason)
    }
    /**
     * No timer for an endless wait: Node would fire it after 1 ms
     */
    const timer =
      ms === Infinity
        ? undefined
        : setTimeout(
            () => {
              finish()
              resolve(undefined)
            },
            Math.max(0, ms)
          )
    signal?.addEventListener('abort', onAbort, { once: true })
    promise?.then(
      (value) => {
        finish()
        resolve(value)
      },
      (error) => {
        finish()
        reject(error)
      }
    )
  })
}

/**
 * One acquire try with a deadline or a signal. A store that does not answer
 * by the deadline fails the try rather than hold the caller past it, and an
 * abort does not wait; should the try take the lock after all, `releaseLate`.
 */
export async function saveWithin(
  save: () => Promise<boolean | AcquireResult>,
  releaseLate: () => void,
  deadline: number,
  signal: AbortSignal | undefined,
  what: string
): Promise<boolean | AcquireResult> {
  const pending = Promise.resolve(save())
  const onLateAnswer = () => {
    pending.then((late) => {
      if (late === true || (typeof late === 'object' && late.acquired)) releaseLate()
    }, noop)
  }
  const bound = Math.max(deadline - performance.now(), STORE_ANSWER_GRACE)
  const answer = await settleWithin(
    pending.then((value) => ({ value })),
    bound,
    signal
  ).catch((error) => {
    if (signal?.aborted) onLateAnswer()
    throw error
  })
  if (!answer) {
    onLateAnswer()
    throw new E_LOCK_STORAGE_ERROR(`${what}: the store did not answer within ${bound} ms`)
  }
  return answer.value
}

function noop() {}
