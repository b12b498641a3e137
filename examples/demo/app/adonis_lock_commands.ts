import { ListLoader } from '@adonisjs/core/ace'
import LockPrune from '../../../commands/lock_prune.ts'
import LockRelease from '../../../commands/lock_release.ts'
import LockStatus from '../../../commands/lock_status.ts'

/**
 * What `adonis-lock/commands` gives an app once the package is built:
 * lock:status, lock:release and lock:prune
 */
const loader = new ListLoader([LockStatus, LockRelease, LockPrune])

export const getMetaData = () => loader.getMetaData()
export const getCommand = (metaData: Parameters<typeof loader.getCommand>[0]) =>
  loader.getCommand(metaData)
