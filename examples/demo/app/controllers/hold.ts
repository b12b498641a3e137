/**
 * How long a demo route works: `ms` from the request, at most 60 s
 */
export function holdMs(value: unknown, fallback: number): number {
  const ms = Number(value ?? fallback)
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 60_000) : fallback
}
