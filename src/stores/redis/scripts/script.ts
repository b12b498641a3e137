import { createHash } from 'node:crypto'

/**
 * A Lua script, run with EVALSHA (EVAL when the server lost it)
 */
export interface RedisScript {
  lua: string
  sha: string
}

/**
 * A script as the server receives it: the shared Lua functions it calls
 * (functions.ts) first, then its own lines
 */
export function script(lua: string): RedisScript
export function script(functions: string[], lua: string): RedisScript
export function script(...parts: [string] | [string[], string]): RedisScript {
  const text = parts
    .flat()
    .map((part) => part.trim())
    .join('\n\n')
  return { lua: text, sha: createHash('sha1').update(text).digest('hex') }
}

/**
 * Ends the value of a lock (its owner) once a try was refused while it was
 * held: only the release of a lock someone waited for publishes. No owner
 * holds a NUL, so none ends like it. The scripts spell it '\0waited'.
 */
export const WAITED_MARK = '\u0000waited'
