import { BaseSchema } from '@adonisjs/lucid/schema'

export default class extends BaseSchema {
  protected tableName = 'locks'

  /**
   * One row per lock key. A released row stays, without owner, until
   * "node ace lock:prune" or the store prunes it: it keeps fencing tokens
   * growing.
   */
  async up() {
    this.schema.createTable(this.tableName, (table) => {
      // On MySQL/MariaDB, compare keys exactly (case, accents), whatever the default collation
      table.string('key', 255).notNullable().primary().collate('utf8mb4_bin')
      table.string('owner', 64).nullable()
      // Ms since the epoch, by the database clock. Null: never expires
      table.bigint('expiration').nullable()
      table.bigint('fencing').notNullable().defaultTo(0)
    })
  }

  async down() {
    this.schema.dropTable(this.tableName)
  }
}
