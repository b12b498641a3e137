import { createHash } from 'node:crypto'
import { MultipartFile } from '@adonisjs/core/bodyparser'
import type { HttpContext } from '@adonisjs/core/http'

/**
 * What is left to write: a value, or text that closes a container (and
 * takes it off the ancestors, for the cycle check)
 */
type Task = { value: unknown } | { text: string; closes?: object }

/**
 * JSON with the keys of every object sorted, so two payloads that differ
 * only by key order or whitespace serialize the same. Uploaded files
 * count by name and size: their content is on disk, not in memory.
 *
 * Iterative, so a body nested as deep as the bodyparser accepts hashes
 * like any other instead of overflowing the stack.
 */
export function canonicalJson(root: unknown): string {
  const output: string[] = []
  const ancestors = new Set<object>()
  const tasks: Task[] = [{ value: root }]

  while (tasks.length) {
    const task = tasks.pop()!
    if ('text' in task) {
      output.push(task.text)
      if (task.closes) ancestors.delete(task.closes)
      continue
    }
    const value = plain(task.value)
    if (value === null || typeof value !== 'object') {
      output.push(scalar(value))
      continue
    }
    if (ancestors.has(value)) {
      output.push('"[Circular]"')
      continue
    }
    ancestors.add(value)

    /**
     * Pushed in reverse: the stack pops them in order
     */
    const pending: Task[] = []
    if (Array.isArray(value)) {
      output.push('[')
      value.forEach((item, index) => {
        if (index > 0) pending.push({ text: ',' })
        pending.push({ value: item })
      })
      pending.push({ text: ']', closes: value })
    } else {
      output.push('{')
      let first = true
      const record = value as Record<string, unknown>
      for (const key of Object.keys(record).sort()) {
        const member = record[key]
        if (member === undefined || typeof member === 'function' || typeof member === 'symbol') {
          continue
        }
        pending.push({ text: `${first ? '' : ','}${JSON.stringify(key)}:` })
        pending.push({ value: member })
        first = false
      }
      pending.push({ text: '}', closes: value })
    }
    for (let index = pending.length - 1; index >= 0; index--) tasks.push(pending[index])
  }
  return output.join('')
}

/**
 * Uploaded files by name and size, then `toJSON()` once, as
 * `JSON.stringify` does. Only a real upload is a file: a JSON body
 * carrying `isMultipartFile: true` is plain data.
 */
function plain(value: unknown): unknown {
  if (value instanceof MultipartFile) return { name: value.clientName, size: value.size }
  if (value !== null && typeof value === 'object') {
    const toJSON = (value as { toJSON?: unknown }).toJSON
    if (typeof toJSON === 'function') return toJSON.call(value)
  }
  return value
}

function scalar(value: unknown): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value)
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null'
    case 'bigint':
      return JSON.stringify(value.toString())
    default:
      return 'null'
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
