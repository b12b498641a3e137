import type { LockEventEmitter } from './types.ts'

/**
 * The public methods of the AdonisJS emitter that add or remove listeners,
 * or send events to a fake
 */
export const LISTENER_CHANGES = [
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
 * Whether `emit(event)` would reach anyone. The emitter's `hasListeners`
 * is slow next to a memory acquire (cost: docs/benchmarks.md), so its
 * answers are cached until a method that changes listeners is called (a
 * test pins that list). A faked emitter records every event.
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
