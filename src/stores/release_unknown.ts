import debug from '../debug.ts'
import { E_LOCK_NOT_OWNED } from '../errors.ts'

/**
 * A failed acquire may still have taken the lock (its answer was lost or
 * timed out): `release` frees it in the background, owner-checked
 */
export function releaseUnknown(release: () => Promise<void>, what: string) {
  release().then(
    () => debug('released %s, taken by an acquire whose answer was lost', what),
    (error) => {
      if (!(error instanceof E_LOCK_NOT_OWNED)) {
        debug('releasing %s after a failed acquire failed: %s', what, error)
      }
    }
  )
}
