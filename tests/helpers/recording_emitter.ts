import type { LockEventEmitter, LockEvents } from '../../src/types.ts'

/**
 * Collects what the locks emit, in order
 */
export class RecordingEmitter implements LockEventEmitter {
  events: Array<{ [K in keyof LockEvents]: { name: K; data: LockEvents[K] } }[keyof LockEvents]> =
    []

  emit<K extends keyof LockEvents>(name: K, data: LockEvents[K]) {
    this.events.push({ name, data } as any)
  }

  names() {
    return this.events.map((event) => event.name)
  }
}
