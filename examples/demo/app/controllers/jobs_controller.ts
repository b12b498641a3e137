import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HttpContext } from '@adonisjs/core/http'
import logger from '@adonisjs/core/services/logger'
import locks from '../../../../services/main.ts'
import { holdMs } from './hold.ts'

/**
 * A worker that waits for the lock `jobs.<name>`, holds it for `ms`, and
 * releases it, streaming each step as a JSON line. Closing the request
 * early releases the lock at once.
 */
export default class JobsController {
  async run({ params, request, response }: HttpContext) {
    const worker = String(request.input('worker', 'worker'))
    const hold = holdMs(request.input('ms'), 1000)
    const stream = new PassThrough()
    const send = (event: Record<string, unknown>) =>
      stream.write(`${JSON.stringify({ worker, pid: process.pid, ...event })}\n`)

    const gone = new AbortController()
    response.response.once('close', () => gone.abort())
    response.header('content-type', 'application/x-ndjson')
    response.stream(stream)

    void (async () => {
      // In your app: import locks from 'adonis-lock/services/main'
      const lock = locks.createLock(`jobs.${params.name}`, '30s')
      const start = Date.now()
      send({ event: 'waiting' })
      try {
        if (!(await lock.acquire({ signal: gone.signal, retry: { timeout: '30s' } }))) {
          send({ event: 'gave up' })
          return
        }
        send({
          event: 'acquired',
          waitedMs: Date.now() - start,
          fencingToken: lock.fencingToken,
          at: Date.now(),
        })
        await sleep(hold, undefined, { signal: gone.signal }).catch(() => {})
        const heldUntil = Date.now()
        await lock.release()
        send({ event: 'released', heldUntil })
      } catch (error) {
        logger.error({ err: error }, 'demo job failed')
        send({ event: 'failed' })
      } finally {
        stream.end()
      }
    })()
  }
}
