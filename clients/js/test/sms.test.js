// sms.send, sms.verify and sms.flow against the real dev server and its
// SMS emulator, whose inbox the tests read as a phone would; the countdown
// on a clock the test moves by hand.

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'

import { failure } from './assertions.js'
import { manualClock } from './clock.js'
import { clientsOf, devServerForTests } from './devserver.js'

const server = devServerForTests()

let numbers = 0
/** A mainland number no other test of this run uses. */
const newMobile = () => `+86139${String(process.pid % 10000).padStart(4, '0')}${String(++numbers).padStart(4, '0')}`
const client = clientsOf(server, 'sms')


/** obtainPass as a page would do it: a captcha of the scene, solved. */
const solveCaptcha = (c) => async ({ scene }) => {
  await c.captcha.create(scene)
  const res = await c.captcha.verify(scene, await server.answer(scene, await c.deviceId()))
  return res.passToken
}

describe('sms', () => {
  it('send delivers a code, verify spends it for a pass, once', async () => {
    const c = client()
    const mobile = newMobile()
    const sent = await c.sms.send('sms', mobile)
    assert.deepEqual([sent.errCode, sent.resendAfter, sent.expiresIn], [0, 10, 300])
    const [message] = await server.smsInbox(mobile)
    const code = message.params[0]
    assert.match(code, /^\d{6}$/)
    assert.match(message.text, new RegExp(`${code}，5分钟内有效`))

    const wrong = await failure(c.sms.verify('sms', mobile, code === '000000' ? '000001' : '000000'))
    assert.deepEqual([wrong.errCode, wrong.status], ['sms-code-invalid', 400])
    const ok = await c.sms.verify('sms', mobile.slice(3), ` ${code} `)
    assert.equal(ok.errCode, 0)
    assert.ok(ok.passExpired > Date.now() && ok.passToken)
    assert.equal((await failure(c.sms.verify('sms', mobile, code))).errCode, 'sms-code-invalid')
  })

  it('a resend too soon is sms-send-too-soon with retryAfter, and sends nothing', async () => {
    const c = client()
    const mobile = newMobile()
    await c.sms.send('sms', mobile)
    const soon = await failure(c.sms.send('sms', mobile))
    assert.deepEqual([soon.errCode, soon.status], ['sms-send-too-soon', 429])
    assert.ok(soon.retryAfter > 0 && soon.retryAfter <= 10, `retryAfter ${soon.retryAfter}`)
    assert.equal((await server.smsInbox(mobile)).length, 1)
  })

  it('a number that is none, or of another country, is refused before anything is sent', async () => {
    const c = client()
    for (const [mobile, errCode] of [
      ['138-0013-8000', 'sms-mobile-invalid'],
      ['+85291234567', 'sms-country-not-allowed'],
    ]) {
      const refused = await failure(c.sms.send('sms', mobile))
      assert.deepEqual([refused.errCode, refused.status], [errCode, 400])
    }
    const upstream = await failure(c.sms.send('sms', '+8619900000005'))
    assert.deepEqual([upstream.errCode, upstream.status], ['sms-upstream-error', 502])
  })

  it('sign in by phone: the guarded send takes a captcha pass, and the sms pass tells the door the number', async () => {
    const c = client()
    const mobile = newMobile()
    const refused = await failure(c.sms.send('phone', mobile))
    assert.deepEqual([refused.errCode, refused.status], ['guard-captcha-required', 403])
    const levels = []
    const sent = await c.guard.run('phone', (pass) => c.sms.send('phone', mobile, pass), (need) => {
      levels.push(need.level)
      return solveCaptcha(c)(need)
    })
    assert.equal(sent.resendAfter, 60)
    assert.deepEqual(levels, ['image'])
    const { passToken } = await c.sms.verify('phone', mobile, await server.smsCode(mobile))
    // The demo page's back end, which checks the pass with POST /guard/check (IAM).
    const checked = await c.request('POST', '/demo/check', { body: { scene: 'phone', passToken } })
    assert.deepEqual([checked.pass.kind, checked.pass.mobile], ['sms', mobile])
  })
})

describe('sms.flow', () => {
  it('counts resendAfter down a second at a time, then sends again', async () => {
    const clock = manualClock()
    const c = client({ clock })
    const mobile = newMobile()
    const seen = []
    const flow = c.sms.flow('sms', { onChange: (state) => seen.push(state.waiting) })
    const first = flow.send(mobile)
    assert.equal(flow.state.sending, true)
    assert.equal((await flow.send(mobile)), null, 'one send at a time')
    assert.equal((await first).resendAfter, 10)
    assert.deepEqual([flow.state.sending, flow.state.waiting], [false, 10])
    assert.equal(await flow.send(mobile), null, 'nothing while the countdown runs')
    clock.advance(9000)
    assert.equal(flow.state.waiting, 1)
    clock.advance(1000)
    assert.equal(flow.state.waiting, 0)
    assert.deepEqual(seen.filter((s, i) => s !== seen[i - 1]).slice(-11), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    // The emulator's window is the server's real 10 s; the flow's wait was
    // the clock's. The server still says too soon: its Retry-After counts.
    assert.equal(await flow.send(mobile), null)
    assert.equal(flow.state.error.errCode, 'sms-send-too-soon')
    assert.ok(flow.state.waiting > 0 && flow.state.waiting <= 10)
    flow.stop()
  })

  it('asks obtainPass when the scene’s guard wants a pass, and gives up without one', async () => {
    const c = client({ clock: manualClock() })
    const mobile = newMobile()
    const gaveUp = c.sms.flow('phone', { obtainPass: () => null })
    assert.equal(await gaveUp.send(mobile), null)
    assert.equal(gaveUp.state.error.errCode, 'guard-captcha-required')
    assert.equal(gaveUp.state.waiting, 0)
    const flow = c.sms.flow('phone', { obtainPass: solveCaptcha(c) })
    const sent = await flow.send(mobile)
    assert.equal(sent.resendAfter, 60)
    assert.equal(flow.state.error, null)
    const pass = await flow.verify(mobile, await server.smsCode(mobile))
    assert.equal(pass.errCode, 0)
    flow.stop()
  })
})
