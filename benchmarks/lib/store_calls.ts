import Database from 'better-sqlite3'
import { Redis } from 'ioredis'
import mysql from 'mysql2'
import pg from 'pg'
import type { Backend } from '../contenders/contender.ts'

/**
 * Commands this process sent to each store, counted at the client (every
 * ioredis command, pg or mysql2 query, better-sqlite3 statement run,
 * whichever library sent it), so the same count applies to every
 * contender: one is one round trip's worth
 */
export const storeCalls = { redis: 0, postgres: 0, mysql: 0, sqlite: 0 }

export function callsOf(backend: Backend): number {
  return backend === 'memory' ? 0 : storeCalls[backend]
}

let installed = false

function count(prototype: any, method: string, backend: keyof typeof storeCalls) {
  const original = prototype[method]
  prototype[method] = function (this: unknown, ...args: any[]) {
    storeCalls[backend]++
    return original.apply(this, args)
  }
}

export function countStoreCalls() {
  if (installed) return
  installed = true
  count(Redis.prototype, 'sendCommand', 'redis')
  count(pg.Client.prototype, 'query', 'postgres')
  /**
   * The base of pool connections too: mysql2/promise and knex both end up
   * in `query` (text protocol) or `execute` (prepared statements)
   */
  count(mysql.Connection.prototype, 'query', 'mysql')
  count(mysql.Connection.prototype, 'execute', 'mysql')
  /**
   * better-sqlite3 exports no Statement class: take it from a statement
   */
  const probe = new Database(':memory:')
  const statement = Object.getPrototypeOf(probe.prepare('SELECT 1'))
  probe.close()
  for (const method of ['run', 'get', 'all']) count(statement, method, 'sqlite')
}
