import { createHash } from 'node:crypto'
import type { Knex } from 'knex'

/**
 * A statement of the store as PostgreSQL takes it: positional parameters,
 * the names of the bindings they stand for, and the name each connection
 * prepares it under (none: parsed and planned on every run)
 */
interface CompiledStatement {
  sql: string
  names: string[]
  name?: string
}

/**
 * At most this many statements are compiled once and named: the lock's
 * seven and the semaphore's five per limit in use. Past that, statements
 * (of yet more limits) are compiled on each call and run unnamed, so that
 * no connection prepares an unbounded number.
 */
const MAX_CACHED = 200

/**
 * Quoted identifiers and string literals are copied as they are; `:name`
 * (not a `::` cast) is a binding
 */
const TOKENS = /("(?:[^"]|"")*"|'(?:[^']|'')*')|(?<!:):(\w+)/g

/**
 * The connection cannot run the named statement any more: the table
 * changed under a prepared plan ("cached plan must not change result
 * type"), or the statement is gone server-side, as behind a pooler in
 * transaction mode
 */
const STALE_STATEMENT_CODES = new Set(['0A000', '26000'])

/**
 * Runs the store's statements on a connection of the knex pool, each as
 * a named prepared statement: PostgreSQL parses and plans it once per
 * connection instead of on every call, and the named bindings are turned
 * into positional ones once instead of by `knex.raw` on every call.
 * `knex.client.query` is what knex's own runner calls, so `query` events,
 * `DEBUG=knex:query` and its error messages stay as with `knex.raw`.
 */
export class PgStatements {
  #knex: Knex
  #named: boolean
  #compiled = new Map<string, CompiledStatement>()

  constructor(knex: Knex, named: boolean) {
    this.#knex = knex
    this.#named = named
  }

  async run(sql: string, bindings: Record<string, unknown>): Promise<unknown> {
    const statement = this.#compile(sql)
    const client = this.#knex.client
    const connection = await client.acquireConnection()
    try {
      const query = await client.query(connection, {
        method: 'raw',
        sql: statement.sql,
        bindings: statement.names.map((name) => bindings[name]),
        options: statement.name ? { name: statement.name } : undefined,
      })
      return query.response
    } catch (error) {
      if (statement.name && STALE_STATEMENT_CODES.has((error as { code?: string }).code!)) {
        /**
         * pg would keep using the name on this connection: the pool
         * destroys it instead (knex checks this mark before reuse)
         */
        connection.__knex__disposed = error
      }
      throw error
    } finally {
      await client.releaseConnection(connection)
    }
  }

  #compile(sql: string): CompiledStatement {
    const cached = this.#compiled.get(sql)
    if (cached) return cached
    const names: string[] = []
    const text = sql.replace(TOKENS, (token, quoted: string | undefined, name: string) => {
      if (quoted) return token
      let position = names.indexOf(name)
      if (position === -1) position = names.push(name) - 1
      return `$${position + 1}`
    })
    const statement: CompiledStatement = { sql: text, names }
    if (this.#compiled.size < MAX_CACHED) {
      if (this.#named) {
        statement.name = `adonis_lock_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`
      }
      this.#compiled.set(sql, statement)
    }
    return statement
  }
}
