import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HttpContext } from '@adonisjs/core/http'
import { holdMs } from './hold.ts'

const runs = new Map<string, number>()

export default class PaymentsController {
  /**
   * Guarded by the lock middleware in Idempotency-Key mode: a retry with
   * the same key must never charge twice
   */
  async store({ request }: HttpContext) {
    const reference = String(request.input('reference', 'unknown'))
    runs.set(reference, (runs.get(reference) ?? 0) + 1)
    await sleep(holdMs(request.input('ms'), 1500))
    return {
      paymentId: randomUUID(),
      reference,
      amount: request.input('amount'),
      processedBy: process.pid,
    }
  }

  async runs({ params }: HttpContext) {
    return { pid: process.pid, runs: runs.get(params.reference) ?? 0 }
  }
}
