/**
 * The waiting line of this process: who waits for which key, in which
 * order, who is woken and who is handed the lock. Words used here:
 *
 * - line: the waiters of this process for one key, in the order their
 *   acquires started (their arrival), back in place after a refused try;
 * - wake: end a waiter's sleep so it tries again now;
 * - hand-over: a release made here moves the lock straight to the first
 *   waiter in one store call (its claim: owner and ttl), nobody polls;
 * - turn: the hand-overs in a row within this process; when it is over the
 *   lock is released to every process and the waiters here pause, so a
 *   waiter of another process gets it;
 * - newcomer: an acquire that starts while others here wait: it joins the
 *   line instead of trying first;
 * - others poll: a release here does not wake other processes (MySQL,
 *   SQLite), so turns there are counted in time.
 *
 * A semaphore's waiters stand in a line of their own, under another key
 * than its lock's, and are never handed a lock.
 *
 * The Redis and database stores keep only what is theirs (a release
 * message, a LISTEN) and call `Waiters`: wait, has, trying, handOver,
 * wakeFirst, wakeAll, extended. The memory store hands nothing over: an
 * async-mutex per key, ordered by arrival, is its whole line.
 */
export { Waiters, type WaiterClaim } from './waiters.ts'
export { arrivalAt, nextWait, othersWaiting, waitForRelease } from './wait_for_release.ts'
