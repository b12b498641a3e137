import { createHash } from 'node:crypto'
import type { HttpContext } from '@adonisjs/core/http'

/**
 * JSON with the keys of every object sorted, so two payloads that differ
 * only by key order or whitespace serialize the same. Uploaded files
 * count by name and size: their content is on disk, not in memory.
 */
export function canonicalJson(value: unknown): string {
  return serialize(value, new Set())
}

function serialize(value: unknown, ancestors: Set<object>): string {
  if (value === null || value === undefined) return 'null'
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value)
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null'
    case 'bigint':
      return JSON.stringify(value.toString())
    case 'object':
      break
    default:
      return 'null'
  }

  const object = value as Record<string, unknown>
  if (object.isMultipartFile === true) {
    return serialize({ name: object.clientName, size: object.size }, ancestors)
  }
  if (typeof object.toJSON === 'function') {
    return serialize((object.toJSON as () => unknown)(), ancestors)
  }
  if (ancestors.has(object)) return '"[Circular]"'
  ancestors.add(object)
  try {
    if (Array.isArray(object)) {
      return `[${object.map((item) => serialize(item, ancestors)).join(',')}]`
    }
    const members: string[] = []
    for (const key of Object.keys(object).sort()) {
      const member = object[key]
      if (member === undefined || typeof member === 'function' || typeof member === 'symbol') {
        continue
      }
      members.push(`${JSON.stringify(key)}:${serialize(member, ancestors)}`)
    }
    return `{${members.join(',')}}`
  } finally {
    ancestors.delete(object)
  }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url')
}

/**
 * Hash of what makes two requests to one route "the same": route params,
 * query string, parsed body (or the raw text body) and uploaded files.
 * Bodies the bodyparser leaves unread do not count.
 */
export function payloadHash(ctx: HttpContext): string {
  const { request } = ctx
  const payload: Record<string, unknown> = {
    params: ctx.params ?? {},
    query: request.qs(),
    body: request.body(),
    files: uploadedFiles(ctx),
  }
  if (request.bodyType === 'raw') payload.raw = request.raw()
  return sha256(canonicalJson(payload))
}

/**
 * `allFiles()` throws when the bodyparser did not run; then there are
 * no files to count
 */
function uploadedFiles(ctx: HttpContext): unknown {
  try {
    return ctx.request.allFiles()
  } catch {
    return {}
  }
}
