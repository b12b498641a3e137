import type { LockEventEmitter } from './types.ts'

/**
 * The methods of the AdonisJS emitter that add or remove listeners, or
 * send events to a fake
 */
const LISTENER_CHANGES = [
  'on',
  'once',
  'onAny',
  'off',
  'offAny',
  'clearListener',
  'clearListeners',
  'clearAllListeners',
  'fake',
  'restore',
] as const

type WatchableEmitter = LockEventEmitter &
  Record<(typeof LISTENER_CHANGES)[number], (...args: unknown[]) => unknown> & {
    hasListeners(event: string): boolean
  }

interface ListenerCache {
  answers: Map<string, boolean>
  faking: boolean
}

const checks = new WeakMap<LockEventEmitter, (event: string) => boolean>()

/**
 * Whether `emit(event)` would reach anyone: every lock operation asks, so
 * for an event nobody listens to the question is the whole cost of the
 * event. The AdonisJS emitter answers through Emittery's listenerCount
 * (~130 ns, as much as the rest of a memory lock's release), so its
 * answers are kept per emitter and forgotten whenever its listeners may
 * change: its methods that change them are wrapped on the instance. A
 * faked emitter records every event, listened or not.
 *
 * Emitters of another shape are asked every time.
 */
export function listenerCheck(emitter: LockEventEmitter): (event: string) => boolean {
  let check = checks.get(emitter)
  if (!check) {
    check = createCheck(emitter)
    checks.set(emitter, check)
  }
  return check
}

function createCheck(emitter: LockEventEmitter): (event: string) => boolean {
  const cache = watch(emitter)
  if (!cache) {
    return emitter.hasListeners ? (event) => emitter.hasListeners!(event) : () => true
  }
  return (event) => {
    if (cache.faking) return true
    let answer = cache.answers.get(event)
    if (answer === undefined) {
      answer = emitter.hasListeners!(event)
      cache.answers.set(event, answer)
    }
    return answer
  }
}

function watch(emitter: LockEventEmitter): ListenerCache | null {
  const target = emitter as Partial<WatchableEmitter>
  if (
    typeof target.hasListeners !== 'function' ||
    LISTENER_CHANGES.some((method) => typeof target[method] !== 'function')
  ) {
    return null
  }
  const cache: ListenerCache = { answers: new Map(), faking: false }
  for (const method of LISTENER_CHANGES) {
    const original = target[method]!
    target[method] = function (this: unknown, ...args: unknown[]) {
      try {
        return original.apply(this, args)
      } finally {
        cache.answers.clear()
        if (method === 'fake') cache.faking = true
        if (method === 'restore') cache.faking = false
      }
    }
  }
  return cache
}
