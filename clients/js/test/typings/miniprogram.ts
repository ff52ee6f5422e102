// A native mini-program's app.ts, as tsc sees it with lib es2017, no DOM and
// WeChat's own typings (miniprogram-api-typings): the real `wx` fits every
// parameter of gatehouse-client that takes it. typings.test.js compiles it.

import { createClient, fetchTransport, wxStorage, wxTransport, type CaptchaFlow, type Clock } from 'gatehouse-client'

const gatehouse = createClient({
  baseUrl: 'https://example.execute-api.ap-east-1.amazonaws.com',
  transport: wxTransport(wx),
  storage: wxStorage(wx),
  wx,
})

const flow: CaptchaFlow = gatehouse.captcha.flow('login', {
  lifetime: 180,
  onPass: (result) => result.passToken.length,
  onExpired: ({ kind }) => kind === 'pass',
  onError: (err, wrongAnswer) => wrongAnswer || err.retryAfter,
})
flow.answer('abcd').then(({ captcha, deviceId, scene }) => captcha + deviceId + scene)

const clock: Clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (id) => clearTimeout(id) }
createClient({ baseUrl: '', clock })

App({
  gatehouse,
  onShow(options) {
    gatehouse.ticket.fromShow(options, { scene: 'login' }).then((result) => result && result.passToken)
  },
})

// The checks bite: each line below must be an error, or tsc reports its
// expect-error directive as unused.
// @ts-expect-error: not a fetch
fetchTransport(42)
// @ts-expect-error: now() answers epoch milliseconds
createClient({ baseUrl: '', clock: { now: () => 'soon', setTimeout, clearTimeout } })
// @ts-expect-error: a pass result has no ticket
flow.verify('abcd').then((result) => result && result.ticket)
