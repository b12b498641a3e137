import { setTimeout as sleep } from 'node:timers/promises'
import type { HttpContext } from '@adonisjs/core/http'
import { holdMs } from './hold.ts'

/**
 * How many times this process ran the route, per order id
 */
const runs = new Map<string, number>()

export default class OrdersController {
  /**
   * Guarded by the lock middleware (start/routes.ts): while this runs, an
   * identical request gets a 409 instead of a second order
   */
  async store({ request }: HttpContext) {
    const orderId = String(request.input('orderId', 'unknown'))
    runs.set(orderId, (runs.get(orderId) ?? 0) + 1)
    await sleep(holdMs(request.input('ms'), 3000))
    return { orderId, processedBy: process.pid }
  }

  async runs({ params }: HttpContext) {
    return { pid: process.pid, runs: runs.get(params.id) ?? 0 }
  }
}
