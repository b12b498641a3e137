import { test } from '@japa/runner'
import { Emitter } from '@adonisjs/core/events'
import { AppFactory } from '@adonisjs/core/factories/app'
import { LockFactory } from '../index.ts'
import { MemoryStore } from '../src/stores/memory.ts'
import { LISTENER_CHANGES } from '../src/listened_events.ts'
import type { LockEventEmitter, LockEvents } from '../src/types.ts'

/**
 * The app's real emitter, and a count of what reaches its `emit`
 */
function appEmitter() {
  const emitter = new Emitter<LockEvents>(
    new AppFactory().create(new URL('../tmp/', import.meta.url))
  )
  const emitted: string[] = []
  const emit = emitter.emit.bind(emitter)
  emitter.emit = ((event: keyof LockEvents, data: any) => {
    emitted.push(event)
    return emit(event, data)
  }) as typeof emitter.emit
  const locks = new LockFactory(new MemoryStore(), {
    emitter: emitter as unknown as LockEventEmitter,
  })
  const cycle = async (key = 'listened') => {
    const lock = locks.createLock(key)
    await lock.acquire()
    await lock.release()
  }
  return { emitter, emitted, cycle }
}

test.group('events on the AdonisJS emitter', () => {
  test('nothing is emitted while nobody listens', async ({ assert }) => {
    const { emitted, cycle } = appEmitter()
    await cycle()
    await cycle()
    assert.deepEqual(emitted, [])
  })

  test('a listener added after locks were used hears the next ones, until it is removed', async ({
    assert,
  }) => {
    const { emitter, emitted, cycle } = appEmitter()
    await cycle()

    const heard: string[] = []
    const listener = (data: LockEvents['lock:acquired']) => heard.push(data.key)
    emitter.on('lock:acquired', listener)
    await cycle('first')
    emitter.off('lock:acquired', listener)
    await cycle('second')

    assert.deepEqual(heard, ['first'])
    assert.deepEqual(emitted, ['lock:acquired'])
  })

  test('once, onAny, listenIf and clearListeners are seen at once', async ({ assert }) => {
    const { emitter, emitted, cycle } = appEmitter()
    await cycle()

    const once: string[] = []
    emitter.once('lock:released', (data) => once.push(data.key))
    await cycle('once')
    assert.deepEqual(once, ['once'])

    const any: string[] = []
    const anyListener = (event: unknown) => any.push(String(event))
    emitter.onAny(anyListener)
    await cycle('any')
    emitter.offAny(anyListener)
    assert.deepEqual(any, ['lock:acquired', 'lock:released'])

    const listened: string[] = []
    emitter.listenIf(true, 'lock:acquired', (data) => listened.push(data.key))
    await cycle('listenIf')
    assert.deepEqual(listened, ['listenIf'])

    emitter.clearListeners('lock:acquired')
    emitted.length = 0
    await cycle('cleared')
    assert.notInclude(emitted, 'lock:acquired')
  })

  test('a faked emitter records the events nobody listens to', async ({ assert }) => {
    const { emitter, emitted, cycle } = appEmitter()
    await cycle()

    const events = emitter.fake()
    await cycle('faked')
    events.assertEmitted('lock:acquired', ({ data }) => data.key === 'faked')
    events.assertEmitted('lock:released')

    emitter.restore()
    emitted.length = 0
    await cycle('restored')
    assert.deepEqual(emitted, [])
  })

  test('every method of the emitter either is watched or does not change listeners', ({
    assert,
  }) => {
    /**
     * The answers are cached until a watched method is called: a method
     * added by a new release of @adonisjs/events must be sorted here
     */
    const unchanging = [
      'constructor',
      'emit',
      'emitSerial',
      'eventsListeners',
      'hasListeners',
      'listen',
      'listenIf',
      'listenerCount',
      'onError',
    ]
    assert.sameMembers(Object.getOwnPropertyNames(Emitter.prototype), [
      ...unchanging,
      ...LISTENER_CHANGES,
    ])
  })
})
