// <gatehouse-captcha>, the native WeChat component (miniprogram/
// gatehouse-captcha), under miniprogram-simulate against the real dev
// server, on the CommonJS build a mini-program requires, with a clock the
// test moves: events, the rules on a bad network, expiry, hand-off, texts.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { manualClock, startOfRateWindow, until } from './clock.js'
import { devServerForTests } from './devserver.js'
import { COMPONENT, mount, packageDir, setApp } from './simulate.js'
import { nodeWx } from './wx.js'

const require = createRequire(import.meta.url)
const { createClient, wxStorage, wxTransport } = require('../miniprogram/index.js')

const server = devServerForTests(() => setApp(null))

let devices = 0
/** An app whose getApp().gatehouse is a client over wx.request, as app.js sets one up; the component mounted in it. */
function mountWithApp(properties, { wxOptions } = {}) {
  const wx = nodeWx(server, wxOptions)
  const clock = manualClock()
  const deviceId = `native-${process.pid}-${++devices}`
  const gatehouse = createClient({ baseUrl: server.url, transport: wxTransport(wx), storage: wxStorage(wx), wx, deviceId, clock })
  setApp({ gatehouse })
  const mounted = mount(COMPONENT, properties)
  const data = () => mounted.comp.data
  const sent = (path) => wx.calls.request.filter((r) => new URL(r.url).pathname === path).length
  return { ...mounted, wx, clock, deviceId, data, sent, answer: (scene) => server.answer(scene, deviceId) }
}

const IMAGE = '.gatehouse-captcha__image'
const INPUT = '.gatehouse-captcha__input'
const SUBMIT = '.gatehouse-captcha__submit'
const ready = (data) => () => data().image.startsWith('data:image/png;base64,') && !data().loading && !data().verifying

describe('gatehouse-captcha (native)', () => {
  it('shows the image, a tap renews it, a wrong answer is an error that brings a new one, and the right one is a pass the door takes', async () => {
    const m = mountWithApp({ scene: 'demo' })
    await until(ready(m.data), 'the first image')
    const first = m.data().image
    m.type(INPUT, 'abc')
    await until(() => m.data().answer === 'abc')
    m.tap(IMAGE)
    await until(() => m.data().image !== first && ready(m.data)(), 'a new image after the tap')
    assert.equal(m.data().answer, '', 'the tap cleared the answer')
    assert.equal(m.sent('/captcha/refresh'), 1)

    const right = await m.answer('demo')
    const shown = m.data().image
    m.type(INPUT, right === 'zzzz' ? 'yyyy' : 'zzzz')
    m.tap(SUBMIT)
    await until(() => m.events.error.length === 1 && m.data().image !== shown && ready(m.data)(), 'the error and a new image')
    assert.deepEqual(
      [m.events.error[0].errCode, m.events.error[0].status, m.events.error[0].wrongAnswer],
      ['uni-captcha-verify-fail', 400, true],
    )
    assert.equal(m.data().answer, '')
    assert.equal(m.data().message, m.events.error[0].errMsg)

    m.type(INPUT, await m.answer('demo'))
    m.confirm(INPUT)
    await until(() => m.events.pass.length === 1, 'the pass')
    assert.equal(m.data().message, '')
    const guarded = await getGuarded(m.events.pass[0].passToken, m.deviceId)
    assert.equal(guarded.guard.passKind, 'captcha')
  })

  it('one verify at a time: two taps on the button send one', async () => {
    const m = mountWithApp({ scene: 'login' })
    await until(ready(m.data), 'the first image')
    m.type(INPUT, await m.answer('login'))
    await until(() => m.data().answer !== '')
    m.tap(SUBMIT)
    m.tap(SUBMIT)
    await until(() => m.events.pass.length === 1 && ready(m.data)(), 'the pass')
    assert.equal(m.sent('/captcha/verify'), 1)
  })

  it('a 429 keeps the answer and the image and counts retryAfter down; no network keeps them too', async () => {
    let offline = false
    const m = mountWithApp({ scene: 'throttled' }, { wxOptions: {} })
    m.wx.intercept = () => (offline ? { errMsg: 'request:fail offline' } : null)
    await until(ready(m.data), 'the first image')
    await startOfRateWindow()
    const first = m.data().image
    m.type(INPUT, (await m.answer('throttled')) === 'zzzz' ? 'yyyy' : 'zzzz')
    m.tap(SUBMIT)
    await until(() => m.data().image !== first && ready(m.data)(), 'the new image')
    const image = m.data().image
    const right = await m.answer('throttled')
    m.type(INPUT, right)
    m.tap(SUBMIT)
    await until(() => m.events.error.length === 2, 'the 429')
    const limited = m.events.error[1]
    assert.deepEqual([limited.errCode, limited.status, limited.wrongAnswer], ['rate-limited', 429, false])
    const seconds = Math.ceil(limited.retryAfter)
    assert.equal(m.data().waiting, seconds)
    assert.equal(m.data().message, `操作太频繁，请 ${seconds} 秒后再试`)
    assert.equal(m.data().answer, right)
    assert.equal(m.data().image, image)
    assert.equal(m.find('gatehouse-captcha__submit').disabled, true)

    const verifies = m.sent('/captcha/verify')
    m.tap(SUBMIT)
    m.tap(IMAGE)
    await new Promise((resolve) => setImmediate(resolve)) // the taps land (j-component dispatches in a microtask)
    m.clock.advance(seconds * 1000)
    assert.equal(m.data().waiting, 0)
    assert.equal(m.data().message, '')
    assert.equal(m.sent('/captcha/verify') + m.sent('/captcha/refresh'), verifies + 1, 'nothing was sent while waiting')

    offline = true
    m.tap(SUBMIT)
    await until(() => m.events.error.length === 3, 'the network error')
    assert.deepEqual([m.events.error[2].errCode, m.events.error[2].wrongAnswer], ['network-error', false])
    assert.equal(m.data().message, '网络不给力，请稍后再试')
    assert.equal(m.data().answer, right)
    assert.equal(m.data().image, image)
  })

  it('renews the image 10 s before the captcha’s lifetime ends, and says when a pass went unused', async () => {
    const m = mountWithApp({ scene: 'demo', lifetime: 60 })
    await until(ready(m.data), 'the first image')
    const first = m.data().image
    m.type(INPUT, 'half')
    await until(() => m.data().answer === 'half')
    m.clock.advance(49999)
    assert.deepEqual(m.events.expired, [])
    m.clock.advance(1)
    assert.deepEqual(m.events.expired, [{ kind: 'captcha' }])
    await until(() => m.data().image !== first && ready(m.data)(), 'the renewed image')
    assert.equal(m.data().answer, '')

    m.type(INPUT, await m.answer('demo'))
    m.tap(SUBMIT)
    await until(() => m.events.pass.length === 1 && ready(m.data)(), 'the pass')
    const solved = m.data().image
    m.clock.advance(m.events.pass[0].passExpired - m.clock.now())
    assert.deepEqual(m.events.expired, [{ kind: 'captcha' }, { kind: 'pass' }])
    await until(() => m.data().image !== solved && ready(m.data)(), 'a new image')
    assert.equal(m.data().message, '验证已过期，请重新输入')
  })

  it('with hand-off, submit verifies nothing and emits { captcha, deviceId, scene }, which the door takes in place of a pass', async () => {
    const m = mountWithApp({ scene: 'demo', handOff: true })
    await until(ready(m.data), 'the first image')
    const right = await m.answer('demo')
    m.type(INPUT, ` ${right} `)
    m.confirm(INPUT)
    await until(() => m.events.answer.length === 1, 'the answer')
    assert.deepEqual(m.events.answer[0], { captcha: right, deviceId: m.deviceId, scene: 'demo' })
    assert.equal(m.sent('/captcha/verify'), 0)
    // The page's own request, the handed answer as its proof.
    const res = await getApp().gatehouse.request('POST', '/demo/guarded', { body: {}, pass: m.events.answer[0] })
    assert.equal(res.guard.passKind, 'captcha', 'the door judged the answer itself')
    assert.equal(res.guard.deviceId, m.deviceId)
  })

  it('ask(need) is guard.request’s obtainPass: two requests for the flow, a refused answer brings a new image and says so', async () => {
    const m = mountWithApp({ scene: 'demo' })
    await until(ready(m.data), 'the first image')
    const first = m.data().image
    const asked = []
    const signUp = getApp().gatehouse.guard.request('demo', 'POST', '/demo/guarded', { body: { username: 'native' } }, (need) => {
      asked.push(need)
      return m.comp.instance.ask(need)
    }, { level: 'image' })
    await until(() => asked.length === 1, 'asked for the challenge')
    const right = await m.answer('demo')
    m.type(INPUT, right === 'zzzz' ? 'yyyy' : 'zzzz')
    m.tap(SUBMIT)
    // The door refused and spent it: asked again, a new image, the reason shown.
    await until(() => asked.length === 2 && m.data().image !== first && ready(m.data)(), 'asked again, a new image')
    assert.deepEqual(asked, [
      { level: 'image', scene: 'demo' },
      { level: 'image', scene: 'demo', refused: true },
    ])
    assert.equal(m.data().message, '验证未通过，请输入新的验证码')
    m.type(INPUT, await m.answer('demo'))
    m.tap(SUBMIT)
    const res = await signUp
    assert.equal(res.guard.passKind, 'captcha')
    assert.equal(res.guard.deviceId, m.deviceId)
    // No verify: the captcha's create and refresh, and the request itself.
    assert.equal(m.sent('/captcha/verify'), 0)
    assert.equal(m.sent('/demo/guarded'), 2)
    const sentHeaders = m.wx.calls.request.filter((r) => new URL(r.url).pathname === '/demo/guarded').map((r) => r.header)
    assert.ok(sentHeaders.every((h) => h['X-Gatehouse-Captcha'] && h['X-Gatehouse-Pass'] === undefined), JSON.stringify(sentHeaders))
    assert.deepEqual(m.events.pass, [], 'no pass was earned')
  })

  it('texts by WeChat’s language or the strings property, labelled for screen readers, themed by the uni-app component’s CSS variables', async () => {
    const zh = mountWithApp({ scene: 'login' })
    await until(ready(zh.data), 'the image')
    assert.deepEqual(pick(zh.find('gatehouse-captcha__image'), 'ariaRole', 'ariaLabel'), ['button', '验证码图片，点击换一张'])
    assert.deepEqual(pick(zh.find('gatehouse-captcha__input'), 'placeholder', 'ariaLabel'), ['请输入验证码', '验证码'])
    zh.tap(SUBMIT)
    await until(() => zh.data().message !== '')
    assert.equal(zh.data().message, '请填写验证码')
    assert.equal(zh.sent('/captcha/verify'), 0)

    const language = globalThis.wx.getAppBaseInfo
    globalThis.wx.getAppBaseInfo = () => ({ language: 'en' })
    try {
      const en = mountWithApp({ scene: 'login', strings: { confirm: 'Check' } })
      assert.deepEqual(pick(en.find('gatehouse-captcha__input'), 'placeholder'), ['Enter the characters'])
      assert.deepEqual(pick(en.find('gatehouse-captcha__submit'), 'ariaRole', 'ariaLabel'), ['button', 'Check'])
    } finally {
      globalThis.wx.getAppBaseInfo = language
    }

    // One table of texts, one set of CSS variables, for both component kits.
    const uniDir = join(packageDir, '../uni-app/uni_modules/gatehouse-captcha/components/gatehouse-captcha')
    const native = require('../miniprogram/gatehouse-captcha/strings.js').STRINGS
    const uni = (await import(join(uniDir, 'strings.js'))).STRINGS
    assert.deepEqual(native, uni)
    const variables = (text) => [...new Set(text.match(/--gatehouse-captcha-[\w-]+/g))].sort()
    const wxss = variables(readFileSync(join(packageDir, 'miniprogram/gatehouse-captcha/index.wxss'), 'utf8'))
    const vue = variables(readFileSync(join(uniDir, 'gatehouse-captcha.vue'), 'utf8'))
    assert.deepEqual(
      vue.filter((v) => !wxss.includes(v)),
      [],
      'every variable of the uni-app component themes the native one',
    )
  })

  it('without getApp().gatehouse, an error event says how to set it up', async () => {
    setApp({})
    const m = mount(COMPONENT, { scene: 'login' })
    await until(() => m.events.error.length === 1)
    assert.equal(m.events.error[0].errCode, 'gatehouse-missing')
    assert.match(m.events.error[0].errMsg, /getApp\(\)\.gatehouse/)
  })
})

const pick = (attrs, ...names) => names.map((name) => attrs[name])

async function getGuarded(passToken, deviceId) {
  const res = await fetch(`${server.url}/demo/guarded`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gatehouse-pass': passToken, 'x-device-id': deviceId },
    body: '{}',
  })
  return res.json()
}
