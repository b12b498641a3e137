import { createHash } from 'node:crypto'

/**
 * The key column holds 255 characters; stored keys stay within 244 bytes,
 * so that a semaphore's row suffixes (`#slots`, `#slot` and up to 6
 * digits) still fit after them
 */
const MAX_STORED_KEY_BYTES = 244
const SHORTENED_HEAD_BYTES = 200

/**
 * The endings of a semaphore's own rows. A key ending like one is stored
 * hashed, so that no lock ever shares a row with a semaphore.
 */
const SEMAPHORE_ROW = /#slot(?:s|\d+)$/
const SLOT_ROW = /#slot\d+$/

/**
 * The key as the table stores it. Keys are valid up to 1024 bytes: longer
 * ones than the column takes become their first 200 bytes, `#` and a
 * SHA-256 of the whole key, still readable and still distinct. MySQL
 * ignores trailing spaces when comparing (PAD SPACE collations), so there
 * keys ending with a space are stored that way too, as are keys that end
 * like a semaphore's rows (`SEMAPHORE_ROW`).
 */
export function storedKey(key: string, padSpace: boolean): string {
  if (
    Buffer.byteLength(key) <= MAX_STORED_KEY_BYTES &&
    !SEMAPHORE_ROW.test(key) &&
    !(padSpace && key.endsWith(' '))
  ) {
    return key
  }
  let head = ''
  let bytes = 0
  for (const char of key) {
    bytes += Buffer.byteLength(char)
    if (bytes > SHORTENED_HEAD_BYTES) break
    head += char
  }
  return `${head}#${createHash('sha256').update(key).digest('base64url')}`
}

/**
 * The row of a semaphore's slot, from the semaphore's stored key
 */
export function slotKey(stored: string, index: number): string {
  return `${stored}#slot${index}`
}

/**
 * The row keeping a semaphore's last fencing token, from its stored key
 */
export function fencingKey(stored: string): string {
  return `${stored}#slots`
}

/**
 * The line of waiters a released row wakes: a lock's is its stored key, a
 * slot's that of its semaphore's waiters (`slotWaitersKey`)
 */
export function releasedKey(row: string): string {
  return SLOT_ROW.test(row) ? slotWaitersKey(row.replace(SLOT_ROW, '')) : row
}

/**
 * The line of a semaphore's waiters, apart from its key's lock: the name
 * of its fencing row, which no lock has
 */
export function slotWaitersKey(stored: string): string {
  return fencingKey(stored)
}
