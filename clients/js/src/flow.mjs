// The state of one captcha widget over time: what the uni-app components
// and the WeChat component share, so that all of them follow one set of
// rules on a bad network:
// - loads are numbered, and the answer to a load that a newer one
//   superseded is dropped;
// - one verify at a time: a second call while one runs gets its promise;
// - only a wrong answer (WRONG_ANSWER) spends the captcha: a new image
//   comes (the component clears the input); any other failure (no network,
//   429, 503 …) keeps the image and the typed answer, and waits out
//   `retryAfter` before anything is sent again;
// - the image refreshes by itself MARGIN seconds before the captcha's
//   lifetime ends, and a pass left unused past its `passExpired` asks for a
//   new solve: both announced by onExpired({ kind: 'captcha' | 'pass' }).

/** errCodes that mean the answer was wrong: the captcha is spent. */
export const WRONG_ANSWER = ['uni-captcha-verify-fail', 'uni-captcha-verify-overdue', 'uni-captcha-text-required']

/** Seconds before the captcha's end at which the image refreshes itself. */
const MARGIN = 10
/** The longest pass a scene can hand out (passTtlSeconds ≤ 3600), in ms: a longer wait means a skewed clock. */
const PASS_TTL_MAX = 3600e3

/**
 * What both widgets (this one and sms.mjs's) keep: `state`, which
 * change(patch) updates before handing it to onChange; and its `waiting`,
 * which wait(seconds, end) counts down on `clock`, a second a tick, then
 * calls `end` (or sets waiting to 0 when none is given); stop() ends the count.
 * cancel(timer) clears one of the caller's own timers, if set.
 */
export function widget(state, clock, handlers) {
  let timer = null
  const change = (patch) => {
    Object.assign(state, patch)
    if (handlers.onChange) handlers.onChange(state)
  }
  const cancel = (id) => id !== null && clock.clearTimeout(id)
  const stop = () => cancel(timer)
  function wait(seconds, end = () => change({ waiting: 0 })) {
    stop()
    timer = seconds > 0 ? clock.setTimeout(() => wait(seconds - 1, end), 1000) : null
    if (seconds > 0) change({ waiting: seconds })
    else end()
  }
  return { change, wait, stop, cancel }
}

/**
 * captchaFlow({ captcha, clock, deviceId }, scene, handlers): the client's
 * captcha calls, its clock and device id; handlers { size, lifetime (the
 * scene's expiresDate in seconds, 180 by default), onChange(state),
 * onPass(result), onExpired({ kind }), onError(err, wrongAnswer) }.
 * state: { image, loading, verifying, waiting (seconds left), error }.
 */
export function captchaFlow({ captcha, clock, deviceId }, scene, handlers) {
  const lifetime = handlers.lifetime || 180
  const state = { image: '', loading: false, verifying: false, waiting: 0, error: null }
  let loads = 0
  let running = null
  let expiry = null
  let retry = null
  let stopped = false

  const on = (name, a, b) => handlers[name] && handlers[name](a, b)
  const { change, wait, stop, cancel } = widget(state, clock, handlers)

  function expireIn(ms, kind) {
    cancel(expiry)
    expiry = clock.setTimeout(() => {
      expiry = null
      on('onExpired', { kind })
      load(true)
    }, ms)
  }

  // After a wait: clear the error it waited out and run the load that
  // failed, if any.
  function waited() {
    change({ waiting: 0, error: null })
    if (retry) retry()
  }

  function fail(err, wrong) {
    change({ error: err })
    on('onError', err, wrong)
    if (!wrong && err.retryAfter > 0) wait(Math.ceil(err.retryAfter), waited)
  }

  // A new image: refresh the device's captcha (`fresh`), or create one when there is none.
  async function load(fresh) {
    if (stopped) return
    const n = ++loads
    retry = null
    change({ loading: true })
    try {
      const res =
        (fresh &&
          (await captcha.refresh(scene, handlers.size).catch((err) => {
            if (err.errCode !== 'uni-captcha-refresh-fail') throw err
          }))) ||
        (await captcha.create(scene, handlers.size))
      if (n !== loads) return
      change({ image: res.captchaBase64, loading: false })
      expireIn(Math.max(lifetime / 2, lifetime - MARGIN) * 1000, 'captcha')
    } catch (err) {
      if (n !== loads) return
      change({ loading: false })
      retry = () => load(fresh)
      fail(err, false)
    }
  }

  function verify(answer) {
    if (running) return running
    if (stopped || state.waiting > 0) return Promise.resolve(null)
    change({ verifying: true, error: null })
    running = captcha
      .verify(scene, answer)
      .then(
        (res) => {
          cancel(expiry)
          expiry = null
          const left = res.passExpired - clock.now()
          if (left > 0 && left <= PASS_TTL_MAX) expireIn(left, 'pass')
          return res
        },
        (err) => {
          const wrong = WRONG_ANSWER.includes(err.errCode)
          fail(err, wrong)
          if (wrong) load(true)
          return null
        },
      )
      .then((res) => {
        running = null
        change({ verifying: false })
        if (res && !stopped) on('onPass', res)
        return res
      })
    return running
  }

  return {
    state,
    /** The first image (create). */
    start: () => load(),
    /** A new image, unless a wait is running. */
    refresh: () => (state.waiting > 0 ? Promise.resolve() : load(true)),
    verify,
    /** The answer for the caller to send with its own request: { captcha, deviceId, scene }. */
    answer: (text) => deviceId().then((id) => ({ captcha: text, deviceId: id, scene })),
    /** Ends every timer; answers still on their way are dropped. */
    stop() {
      stopped = true
      loads++
      cancel(expiry)
      stop()
    },
  }
}
