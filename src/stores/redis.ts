import type { LockStore } from '../types.ts'
import type { Cluster, Redis } from 'ioredis'

export interface RedisStoreOptions {
  connection: Redis | Cluster
}

// Placeholder: implemented with the Redis store issue
export class RedisStore implements LockStore {
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
  constructor(readonly options: RedisStoreOptions) {
    throw new Error('RedisStore is not implemented yet')
  }
}
