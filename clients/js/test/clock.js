// A clock the test moves by hand (createClient's `clock` option): no test
// waits for real time to pass.

export function manualClock(start = Date.now()) {
  let now = start
  let next = 1
  const timers = new Map()
  return {
    now: () => now,
    setTimeout(fn, ms) {
      timers.set(next, { at: now + ms, fn })
      return next++
    },
    clearTimeout(id) {
      timers.delete(id)
    },
    /** Milliseconds until the next timer is due; Infinity when none is set. */
    untilNext() {
      let first = Infinity
      for (const timer of timers.values()) first = Math.min(first, timer.at - now)
      return first
    },
    /** Moves time on by `ms`, running every timer that falls due on the way, in order. */
    advance(ms) {
      const end = now + ms
      for (;;) {
        let due = null
        for (const [id, timer] of timers) if (timer.at <= end && (!due || timer.at < due[1].at)) due = [id, timer]
        if (!due) break
        timers.delete(due[0])
        now = due[1].at
        due[1].fn()
      }
      now = end
    },
  }
}

/**
 * Resolves once `predicate()` holds, looking every few milliseconds of real
 * time (the dev server answers in real time); gives up after 20 s, a guard
 * against hanging rather than a bound on speed.
 */
export async function until(predicate, what = 'the condition') {
  for (let looks = 0; looks < 4000; looks++) {
    if (predicate()) return
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error(`never saw ${what}`)
}

/**
 * The dev server's rate limits count in fixed windows that start at
 * multiples of their length (60 s in the tests' `throttled` scene). Waits
 * for the next window when less than 15 s of this one is left, so that a
 * test's requests all fall in one window and a 429's retryAfter is far
 * from over.
 */
export async function startOfRateWindow(windowMs = 60_000) {
  const left = windowMs - (Date.now() % windowMs)
  if (left < 15_000) await new Promise((resolve) => setTimeout(resolve, left + 100))
}

/**
 * How many of the held requests (each `{ release }` once the server has
 * answered it, in the order they were sent) the server has answered.
 */
export const answered = (held) => held.filter((h) => h.release).length
