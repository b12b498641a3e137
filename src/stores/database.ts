import type { LockStore } from '../types.ts'
import type { Knex } from 'knex'

export interface DatabaseStoreOptions {
  connection: Knex
  tableName?: string
}

// Placeholder: implemented with the database store issue
export class DatabaseStore implements LockStore {
  save(): Promise<boolean> {
    throw new Error('not implemented')
  }
  delete(): Promise<void> {
    throw new Error('not implemented')
  }
  forceDelete(): Promise<void> {
    throw new Error('not implemented')
  }
  exists(): Promise<boolean> {
    throw new Error('not implemented')
  }
  extend(): Promise<void> {
    throw new Error('not implemented')
  }
  constructor(readonly options: DatabaseStoreOptions) {
    throw new Error('DatabaseStore is not implemented yet')
  }
}
