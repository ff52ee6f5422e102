// The state of one "获取验证码" button over time: what the uni-app and the
// WeChat components of an SMS code share.
// - send(mobile) runs the send through the guard (guard.run): when the
//   scene's level asks for a pass, obtainPass({ level, scene }) gets one
//   (the component shows the captcha) and the send is tried once more;
// - one send at a time; after a sent code the button counts `resendAfter`
//   down, and after a refusal with retryAfter (sms-send-too-soon,
//   rate-limited …) that wait, a second a tick;
// - verify(mobile, code) is the client's sms.verify.

import { widget } from './flow.mjs'

/**
 * smsFlow({ sms, guard, clock }, scene, handlers): handlers { onChange(state),
 * obtainPass({ level, scene }) → passToken or nothing }.
 * state: { sending, waiting (seconds left), error }.
 */
export function smsFlow({ sms, guard, clock }, scene, handlers) {
  const state = { sending: false, waiting: 0, error: null }
  const { change, wait, stop } = widget(state, clock, handlers)

  function send(mobile) {
    if (state.sending || state.waiting > 0) return Promise.resolve(null)
    change({ sending: true, error: null })
    return guard
      .run(scene, (pass) => sms.send(scene, mobile, pass), (need) => handlers.obtainPass(need))
      .then(
        (res) => {
          wait(res.resendAfter)
          return res
        },
        (err) => {
          change({ error: err })
          if (err.retryAfter > 0) wait(Math.ceil(err.retryAfter))
          return null
        },
      )
      .then((res) => {
        change({ sending: false })
        return res
      })
  }

  return { state, send, verify: (mobile, code) => sms.verify(scene, mobile, code), stop }
}
