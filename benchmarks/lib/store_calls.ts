import { Redis } from 'ioredis'
import pg from 'pg'

/**
 * Commands this process sent to each store, counted at the client (every
 * ioredis command and every pg query, whichever library sent it), so the
 * same count applies to every contender: one is one round trip's worth
 */
export const storeCalls = { redis: 0, postgres: 0 }

let installed = false

export function countStoreCalls() {
  if (installed) return
  installed = true
  const sendCommand = Redis.prototype.sendCommand
  Redis.prototype.sendCommand = function (this: Redis, ...args: any[]) {
    storeCalls.redis++
    return (sendCommand as any).apply(this, args)
  } as typeof sendCommand
  const query = pg.Client.prototype.query
  pg.Client.prototype.query = function (this: unknown, ...args: any[]) {
    storeCalls.postgres++
    return (query as any).apply(this, args)
  } as typeof query
}
