/**
 * Samples kept in a growing Float64Array: millions of latencies without
 * an object per sample or GC pauses in the measured loops
 */
export class Samples {
  #values = new Float64Array(1024)
  #length = 0
  #sorted: Float64Array | undefined

  get length(): number {
    return this.#length
  }

  push(value: number) {
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2)
      grown.set(this.#values)
      this.#values = grown
    }
    this.#values[this.#length++] = value
    this.#sorted = undefined
  }

  append(other: Samples | ArrayLike<number>) {
    const values = other instanceof Samples ? other.values() : other
    for (let index = 0; index < values.length; index++) this.push(values[index])
  }

  values(): Float64Array {
    return this.#values.subarray(0, this.#length)
  }

  /**
   * The `p` quantile (0..1), nearest rank; NaN without samples
   */
  quantile(p: number): number {
    if (this.#length === 0) return Number.NaN
    this.#sorted ??= this.values().slice().sort()
    const rank = Math.min(this.#length - 1, Math.max(0, Math.ceil(p * this.#length) - 1))
    return this.#sorted[rank]
  }
}

export function median(values: number[]): number {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b)
  if (finite.length === 0) return Number.NaN
  const middle = Math.floor(finite.length / 2)
  return finite.length % 2 ? finite[middle] : (finite[middle - 1] + finite[middle]) / 2
}

export function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0)
}

/**
 * One clock for every process of the machine: process.hrtime reads
 * CLOCK_MONOTONIC, which Linux keeps system-wide, so critical sections
 * timed in two processes can be compared. In ms.
 */
export function sharedClock(): number {
  return Number(process.hrtime.bigint()) / 1e6
}
