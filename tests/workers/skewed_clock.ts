/**
 * Preloaded (`--import`) into a worker to shift its clock: `Date.now()`
 * runs `CLOCK_OFFSET_MS` ahead (or behind, when negative) of the real one
 */
const offset = Number(process.env.CLOCK_OFFSET_MS ?? 0)
const realNow = Date.now.bind(Date)
Date.now = () => realNow() + offset
