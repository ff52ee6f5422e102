// <gatehouse-sms-code>, the native WeChat component (miniprogram/
// gatehouse-sms-code), under miniprogram-simulate against the real dev
// server and its SMS emulator (whose inbox the test reads as a phone
// would), on the CommonJS build, with a clock the test moves.

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, it } from 'node:test'

import { manualClock, until } from './clock.js'
import { devServerForTests } from './devserver.js'
import { mount, packageDir, setApp } from './simulate.js'
import { nodeWx } from './wx.js'

const require = createRequire(import.meta.url)
const { createClient, wxStorage, wxTransport } = require('../miniprogram/index.js')
const SMS_CODE = join(packageDir, 'miniprogram/gatehouse-sms-code/index')

const server = devServerForTests(() => setApp(null))

let devices = 0
let numbers = 0
/** A mainland number no other test of this run uses. */
const newMobile = () => `+86136${String(process.pid % 10000).padStart(4, '0')}${String(++numbers).padStart(4, '0')}`

function mountWithApp(properties) {
  const wx = nodeWx(server)
  const clock = manualClock()
  const deviceId = `native-sms-${process.pid}-${++devices}`
  const gatehouse = createClient({ baseUrl: server.url, transport: wxTransport(wx), storage: wxStorage(wx), wx, deviceId, clock })
  setApp({ gatehouse })
  const mounted = mount(SMS_CODE, properties)
  const data = () => mounted.comp.data
  const sent = (path) => wx.calls.request.filter((r) => new URL(r.url).pathname === path).length
  return { ...mounted, clock, deviceId, data, sent, answer: (scene) => server.answer(scene, deviceId) }
}

const MOBILE = '.gatehouse-sms-code__mobile'
const CODE = '.gatehouse-sms-code__code'
const SEND = '.gatehouse-sms-code__send'

describe('gatehouse-sms-code (native)', () => {
  it('sends a code, counts resendAfter down on the button, and verifies the code read from the inbox', async () => {
    const m = mountWithApp({ scene: 'sms' })
    await until(() => m.data().buttonText === '获取验证码')
    m.tap(SEND)
    await until(() => m.data().message === '请填写手机号')
    assert.equal(m.sent('/sms/send'), 0)

    const mobile = newMobile()
    m.type(MOBILE, mobile.slice(3))
    m.tap(SEND)
    await until(() => m.events.sent.length === 1, 'the send')
    assert.deepEqual([m.events.sent[0].resendAfter, m.events.sent[0].expiresIn], [10, 300])
    assert.equal(m.data().buttonText, '10 秒后重新获取')
    assert.equal(m.find('gatehouse-sms-code__send').disabled, true)
    m.clock.advance(4000)
    assert.equal(m.data().buttonText, '6 秒后重新获取')
    m.clock.advance(6000)
    assert.equal(m.data().buttonText, '获取验证码')

    const [message] = await server.smsInbox(mobile)
    const code = message.params[0]
    m.type(CODE, code === '000000' ? '000001' : '000000')
    m.confirm(CODE)
    await until(() => m.events.error.length === 1, 'the wrong code')
    assert.deepEqual([m.events.error[0].errCode, m.events.error[0].status], ['sms-code-invalid', 400])
    assert.equal(m.data().message, '短信验证码错误或已失效')

    m.type(CODE, code)
    m.confirm(CODE)
    await until(() => m.events.verified.length === 1, 'the right code')
    const [verified] = m.events.verified
    assert.equal(verified.mobile, mobile.slice(3))
    assert.equal(m.data().message, '')
    assert.match(verified.passToken, /^[A-Za-z0-9_-]{44,}$/)
  })

  it('shows the captcha when the scene’s guard asks for a pass and sends once it is solved; cancel gives up', async () => {
    const m = mountWithApp({ scene: 'phone', strings: { send: 'Get code' } })
    const mobile = newMobile()
    m.type(MOBILE, mobile)
    m.tap(SEND)
    await until(() => m.data().captcha, 'the captcha')
    m.tap('.gatehouse-sms-code__cancel')
    await until(() => m.events.error.length === 1, 'given up')
    assert.equal(m.events.error[0].errCode, 'guard-captcha-required')
    assert.equal(m.data().captcha, false)
    assert.equal(m.data().buttonText, 'Get code')
    assert.deepEqual(await server.smsInbox(mobile), [])

    m.tap(SEND)
    await until(() => m.data().captcha, 'the captcha again')
    const captcha = m.inner('#captcha')
    await until(() => captcha.comp.data.image.startsWith('data:image/png'), 'its image')
    captcha.type('.gatehouse-captcha__input', await m.answer('phone'))
    captcha.tap('.gatehouse-captcha__submit')
    await until(() => m.events.sent.length === 1, 'the send')
    assert.equal(m.events.sent[0].resendAfter, 60)
    assert.equal(m.data().captcha, false)
    assert.equal((await server.smsInbox(mobile)).length, 1)

    // The sms pass at the scene's door carries the number.
    m.type(CODE, await server.smsCode(mobile))
    m.confirm(CODE)
    await until(() => m.events.verified.length === 1, 'the right code')
    // The demo page's back end, which checks the pass with POST /guard/check (IAM).
    const check = await fetch(`${server.url}/demo/check`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scene: 'phone', passToken: m.events.verified[0].passToken }),
    }).then((res) => res.json())
    assert.deepEqual([check.pass.kind, check.pass.mobile], ['sms', mobile])
  })

  it('a Tencent level asks the page with needpass; givePass(null) gives up', async () => {
    const m = mountWithApp({ scene: 'sms' })
    const waiting = m.comp.instance.obtainPass({ level: 'tencent', scene: 'sms' })
    assert.deepEqual(m.events.needpass, [{ level: 'tencent', scene: 'sms' }])
    assert.equal(m.data().captcha, false)
    m.comp.instance.givePass(null)
    assert.equal(await waiting, null)
  })
})
