/**
 * The little of `pg`, `better-sqlite3` and `redlock` the benchmarks use:
 * pg and better-sqlite3 ship no types, and redlock's are not reachable
 * through its `exports` map
 */
declare module 'pg' {
  interface ConnectionConfig {
    host?: string
    port?: number
    user?: string
    database?: string
    max?: number
  }
  interface QueryResult {
    rowCount: number | null
    rows: any[]
  }
  class Client {
    constructor(config?: ConnectionConfig)
    connect(): Promise<void>
    query(text: string, values?: unknown[]): Promise<QueryResult>
    end(): Promise<void>
  }
  class Pool {
    constructor(config?: ConnectionConfig)
    query(text: string, values?: unknown[]): Promise<QueryResult>
    end(): Promise<void>
  }
  const pg: { Client: typeof Client; Pool: typeof Pool }
  export default pg
}

declare module 'better-sqlite3' {
  interface RunResult {
    changes: number
  }
  class Statement {
    run(...params: unknown[]): RunResult
    get(...params: unknown[]): any
    all(...params: unknown[]): any[]
  }
  class Database {
    constructor(filename: string, options?: { timeout?: number })
    prepare(sql: string): Statement
    close(): void
  }
  export default Database
}

declare module 'redlock' {
  import type { Cluster, Redis } from 'ioredis'
  import type { EventEmitter } from 'node:events'

  export interface Settings {
    driftFactor: number
    retryCount: number
    retryDelay: number
    retryJitter: number
    automaticExtensionThreshold: number
  }
  export interface Lock {
    release(): Promise<unknown>
  }
  export default class Redlock extends EventEmitter {
    constructor(clients: Iterable<Redis | Cluster>, settings?: Partial<Settings>)
    acquire(resources: string[], duration: number, settings?: Partial<Settings>): Promise<Lock>
  }
}
