/**
 * Payloads of the events emitted on the AdonisJS emitter
 */
export interface LockEventBase {
  key: string
  store: string
  owner: string
}
export interface LockAcquiredEvent extends LockEventBase {
  waited: number
  attempts: number
  fencingToken: number | null
}
export interface LockFailedEvent extends LockEventBase {
  waited: number
  attempts: number
  reason: 'attempts' | 'timeout' | 'aborted' | 'error'
}
export interface LockExtendedEvent extends LockEventBase {
  ttl: number
}
export interface LockLostEvent extends LockEventBase {
  reason: string
}
export interface LockEvents {
  'lock:acquired': LockAcquiredEvent
  'lock:released': LockEventBase
  'lock:failed': LockFailedEvent
  'lock:extended': LockExtendedEvent
  'lock:lost': LockLostEvent
}

/**
 * The part of the AdonisJS emitter the locks use
 */
export interface LockEventEmitter {
  emit<K extends keyof LockEvents>(event: K, data: LockEvents[K]): unknown
  hasListeners?(event?: any): boolean
}

/**
 * The part of the AdonisJS logger the locks use
 */
export interface LockLogger {
  debug(obj: unknown, msg?: string): void
  warn(obj: unknown, msg?: string): void
  isLevelEnabled?(level: string): boolean
}
