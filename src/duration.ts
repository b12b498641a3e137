import { E_INVALID_DURATION } from './errors.ts'

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?$/

/**
 * Largest timeout Node timers accept, so every duration can be slept on
 */
const MAX_DURATION = 2 ** 31 - 1

/**
 * Parses a duration to milliseconds. `null` stays `null` (no expiry).
 * Anything else than a finite, non-negative number or a "10s"-like
 * string raises E_INVALID_DURATION naming the value.
 */
export function parseDuration(value: unknown, field?: string): number | null {
  if (value === null) return null
  let ms: number
  if (typeof value === 'number') {
    ms = value
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value.trim())
    if (!match) throw new E_INVALID_DURATION(value, field)
    ms = Number(match[1]) * UNITS[match[2] ?? 'ms']
  } else {
    throw new E_INVALID_DURATION(value, field)
  }
  if (!Number.isFinite(ms) || ms < 0) throw new E_INVALID_DURATION(value, field)
  if (ms > MAX_DURATION) {
    throw new E_INVALID_DURATION(value, field, 'The longest is 2147483647 ms (about 24.8 days)')
  }
  return Math.round(ms)
}

/**
 * Same as parseDuration, for the places where "no expiry" makes no sense
 */
export function parseRequiredDuration(value: unknown, field?: string): number {
  const ms = parseDuration(value, field)
  if (ms === null) throw new E_INVALID_DURATION(value, field)
  return ms
}

/**
 * A lock's ttl: a duration of at least 1 ms, or `null` (no expiry). A
 * ttl of 0 would expire as it is taken.
 */
export function parseTtl(value: unknown, field = 'ttl'): number | null {
  const ms = parseDuration(value, field)
  if (ms === 0) {
    throw new E_INVALID_DURATION(value, field, 'A ttl is at least 1 ms, or null for no expiry')
  }
  return ms
}

/**
 * Same as parseTtl, where "no expiry" makes no sense
 */
export function parseRequiredTtl(value: unknown, field = 'ttl'): number {
  const ms = parseTtl(value, field)
  if (ms === null) throw new E_INVALID_DURATION(value, field)
  return ms
}
