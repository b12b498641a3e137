/**
 * Timer helpers that honour an AbortSignal and reject with its reason,
 * so callers see the reason they aborted with.
 */

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
