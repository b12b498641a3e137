/**
 * One raw round trip of each backend, measured during the run: the `c`
 * of the contended ceiling `1 / (s + c)`. The cheapest request each
 * backend answers: a Redis `PING`, a `SELECT 1` on PostgreSQL, MariaDB
 * (one connection each, kept open) and SQLite, and for memory one `await`
 * of a settled promise.
 */
import Database from 'better-sqlite3'
import { Redis } from 'ioredis'
import mysql, { type Connection } from 'mysql2/promise'
import pg from 'pg'
import type { Backend, BenchTargets } from '../contenders/contender.ts'
import { Samples } from './stats.ts'

const PROBES = 100

export class RoundTrips {
  #targets: BenchTargets
  #redis?: Redis
  #postgres?: InstanceType<typeof pg.Client>
  #mysql?: Connection
  #sqlite?: Database

  constructor(targets: BenchTargets) {
    this.#targets = targets
  }

  /**
   * The median of `PROBES` round trips one after the other, in ms
   */
  async measure(backend: Backend): Promise<number> {
    const once = await this.#probe(backend)
    await once()
    const samples = new Samples()
    for (let index = 0; index < PROBES; index++) {
      const startedAt = performance.now()
      await once()
      samples.push(performance.now() - startedAt)
    }
    return samples.quantile(0.5)
  }

  async #probe(backend: Backend): Promise<() => Promise<unknown>> {
    const targets = this.#targets
    switch (backend) {
      case 'memory':
        return () => Promise.resolve()
      case 'redis':
        this.#redis ??= new Redis({ ...targets.redis!, maxRetriesPerRequest: 1 })
        return () => this.#redis!.ping()
      case 'postgres': {
        if (!this.#postgres) {
          const { poolSize, ...connection } = targets.postgres!
          this.#postgres = new pg.Client(connection)
          await this.#postgres.connect()
        }
        return () => this.#postgres!.query('SELECT 1')
      }
      case 'mysql': {
        if (!this.#mysql) {
          const { poolSize, ...connection } = targets.mysql!
          this.#mysql = await mysql.createConnection(connection)
        }
        return () => this.#mysql!.query('SELECT 1')
      }
      case 'sqlite': {
        this.#sqlite ??= new Database(targets.sqlite!.filename)
        const statement = this.#sqlite.prepare('SELECT 1')
        return async () => statement.get()
      }
    }
  }

  async close() {
    this.#redis?.disconnect()
    await this.#postgres?.end()
    await this.#mysql?.end()
    this.#sqlite?.close()
  }
}
