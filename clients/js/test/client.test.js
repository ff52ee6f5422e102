// gatehouse-client against the real dev server, for every route it has today.

import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'

import {
  TENCENT_CAPTCHA_MINIPROGRAM,
  createClient,
  fetchTransport,
  memoryStorage,
  uniStorage,
  uniTransport,
  webStorage,
  wxStorage,
  wxTransport,
} from '../dist/index.mjs'
import { failure } from './assertions.js'
import { clientsOf, devServerForTests, startDevServer } from './devserver.js'
import { fakePlatform, fakeWebStorage, pngSize } from './fakes.js'

const server = devServerForTests()
const client = clientsOf(server, 'device')
const CJK = /[\u4e00-\u9fff]/


describe('captcha', () => {
  it('create returns a PNG of the requested size whose answer the server holds', async () => {
    const c = client()
    const res = await c.captcha.create('sized', { width: 200, height: 60 })
    assert.equal(res.errCode, 0)
    assert.deepEqual(pngSize(res.captchaBase64), { width: 200, height: 60 })
    const answer = await server.answer('sized', await c.deviceId())
    assert.match(answer, /^[a-z0-9]{4}$/)
    assert.deepEqual(pngSize((await c.captcha.create('sized')).captchaBase64), { width: 150, height: 50 })
    // A scene without clientSize serves only its own size.
    const refused = await failure(c.captcha.create('login', { width: 200 }))
    assert.equal(refused.errCode, 'uni-captcha-size-not-allowed')
    assert.equal(refused.status, 400)
  })

  it('a wrong answer rejects with uni-captcha-verify-fail and voids the captcha; refresh and the right answer pass', async () => {
    const c = client()
    await c.captcha.create('login')
    const right = await server.answer('login', await c.deviceId())
    const wrong = await failure(c.captcha.verify('login', right === 'zzzz' ? 'yyyy' : 'zzzz'))
    assert.equal(wrong.errCode, 'uni-captcha-verify-fail')
    assert.equal(wrong.status, 400)
    assert.match(wrong.errMsg, CJK, 'Chinese by default')
    // maxAttempts 1: the right answer comes too late.
    assert.equal((await failure(c.captcha.verify('login', right))).errCode, 'uni-captcha-verify-fail')

    const refreshed = await c.captcha.refresh('login')
    assert.ok(pngSize(refreshed.captchaBase64))
    const answer = await server.answer('login', await c.deviceId())
    const ok = await c.captcha.verify('login', ` ${answer.toUpperCase()} `)
    assert.equal(ok.errCode, 0)
    assert.equal(typeof ok.errMsg, 'string')
    if ('passToken' in ok) assert.ok(ok.passExpired > Date.now(), 'a pass comes with its expiry')
    // Verified once: never again.
    assert.equal((await failure(c.captcha.verify('login', answer))).errCode, 'uni-captcha-verify-fail')
  })

  it('refresh without a captcha is uni-captcha-refresh-fail (404); an empty answer is uni-captcha-text-required', async () => {
    const c = client()
    const err = await failure(c.captcha.refresh('login'))
    assert.equal(err.errCode, 'uni-captcha-refresh-fail')
    assert.equal(err.status, 404)
    await c.captcha.create('login')
    assert.equal((await failure(c.captcha.verify('login', ''))).errCode, 'uni-captcha-text-required')
  })

  it('math and six-character scenes verify like any other (nothing assumes four characters)', async () => {
    const c = client()
    await c.captcha.create('math')
    const result = await server.answer('math', await c.deviceId())
    assert.match(result, /^-?\d+$/)
    assert.equal((await c.captcha.verify('math', result)).errCode, 0)

    await c.captcha.create('long')
    const six = await server.answer('long', await c.deviceId())
    assert.equal(six.length, 6)
    assert.equal((await c.captcha.verify('long', six)).errCode, 0)
  })

  it('a size out of bounds is invalid-request; a bad scene is uni-captcha-scene-required', async () => {
    const c = client()
    const err = await failure(c.captcha.create('login', { width: 5000 }))
    assert.equal(err.errCode, 'invalid-request')
    assert.equal(err.status, 400)
    assert.equal((await failure(c.captcha.create('no spaces'))).errCode, 'uni-captcha-scene-required')
  })

  it('without a deviceId option the client makes one, keeps it in storage and sends it as X-Device-Id', async () => {
    const storage = memoryStorage()
    const a = createClient({ baseUrl: server.url, storage })
    const id = await a.deviceId()
    assert.match(id, /^[0-9a-f]{32}$/)
    assert.equal(storage.get('gatehouse:deviceId'), id)
    await a.captcha.create('login')
    assert.ok(await server.answer('login', id), 'the server saw the captcha under that device id')
    const b = createClient({ baseUrl: server.url, storage })
    assert.equal(await b.deviceId(), id, 'a second client on the same storage keeps the id')
    const other = createClient({ baseUrl: server.url })
    assert.notEqual(await other.deviceId(), id)
    // A function works too, called for each request.
    let n = 0
    const fn = createClient({ baseUrl: server.url, deviceId: () => `fn-${process.pid}-${++n}` })
    await fn.captcha.create('login')
    assert.ok(await server.answer('login', `fn-${process.pid}-1`))
  })
})

describe('errors and language', () => {
  it('locale sets Accept-Language: English messages for en, Chinese by default', async () => {
    const en = await failure(client({ locale: 'en' }).captcha.refresh('login'))
    assert.equal(en.errCode, 'uni-captcha-refresh-fail')
    assert.doesNotMatch(en.errMsg, CJK)
    assert.match(en.errMsg, /[a-z]{3}/i)
    assert.equal(en.message, en.errMsg)
    const zh = await failure(client().captcha.refresh('login'))
    assert.match(zh.errMsg, CJK)
    let locale = 'zh-CN'
    const switching = client({ locale: () => locale })
    assert.match((await failure(switching.captcha.refresh('login'))).errMsg, CJK)
    locale = 'en-US,en;q=0.9'
    assert.doesNotMatch((await failure(switching.captcha.refresh('login'))).errMsg, CJK)
  })

  it('a 429 carries retryAfter from Retry-After', async () => {
    const c = client()
    await c.captcha.create('limited')
    const err = await failure(c.captcha.create('limited'))
    assert.equal(err.errCode, 'rate-limited')
    assert.equal(err.status, 429)
    assert.equal(typeof err.retryAfter, 'number')
    assert.ok(err.retryAfter >= 1 && err.retryAfter <= 60, `retryAfter ${err.retryAfter}`)
  })

  it('an error without retry-after has no retryAfter; the whole body is kept in data', async () => {
    const err = await failure(client().ticket.verify({ ticket: 'force-15~data' }))
    assert.equal(err.errCode, 'ticket-rejected')
    assert.equal(err.status, 400)
    assert.equal(err.data.captchaCode, 15)
    assert.equal(typeof err.data.captchaMsg, 'string')
    assert.equal(err.retryAfter, undefined)
    assert.ok(!('retryAfter' in err))
  })

  it('an answer outside the envelope (API Gateway 403) is http-<status>; an unknown route keeps its errCode', async () => {
    const forbidden = await failure(client().request('GET', '/me', { token: 'not-a-session' }))
    assert.equal(forbidden.status, 403)
    assert.equal(forbidden.errCode, 'http-403')
    assert.equal(forbidden.errMsg, 'Forbidden')
    const missing = await failure(client().request('GET', '/no/such/route'))
    assert.equal(missing.status, 404)
    assert.equal(missing.errCode, 'invalid-request')
  })

  it('no answer at all is network-error with status 0', async () => {
    const closed = await new Promise((resolve) => {
      // A port that was free a moment ago: nothing listens there.
      import('node:net').then(({ createServer }) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const { port } = s.address()
          s.close(() => resolve(port))
        })
      })
    })
    const err = await failure(client({ baseUrl: `http://127.0.0.1:${closed}` }).captcha.create('login'))
    assert.equal(err.errCode, 'network-error')
    assert.equal(err.status, 0)
    assert.ok(err instanceof Error)
  })

  it('fetchTransport gives up after its time-out', async () => {
    // force-slow makes the Tencent emulator answer after 8 s (the server gives up at 5 s).
    const c = client({ transport: fetchTransport(fetch, { timeout: 300 }) })
    const started = Date.now()
    const err = await failure(c.ticket.verify({ ticket: `force-slow~${process.pid}` }))
    assert.equal(err.errCode, 'network-error')
    assert.match(err.errMsg, /timeout/)
    assert.ok(Date.now() - started < 4000)
  })
})

describe('WeChat session', () => {
  const sessionClient = (platform, options = {}) =>
    client({ transport: wxTransport(platform), storage: wxStorage(platform), wx: platform, ...options })

  it('login: wx.login, POST /wx/login, token kept in storage', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const res = await c.wx.login()
    assert.equal(res.errCode, 0)
    assert.match(res.token, /^[A-Za-z0-9_-]{43}$/)
    assert.ok(res.tokenExpired > Date.now())
    assert.deepEqual(wx.storage.get('gatehouse:token'), { token: res.token, tokenExpired: res.tokenExpired })
    assert.equal(wx.calls.login, 1)
    const me = await c.wx.get()
    assert.equal(typeof me.openid, 'string')
    assert.equal(me.tokenExpired, res.tokenExpired)
  })

  it('reuses the stored token while wx.checkSession passes', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const first = await c.wx.get()
    const token = wx.storage.get('gatehouse:token').token
    const second = await c.wx.get()
    assert.equal(second.openid, first.openid)
    assert.equal(wx.calls.login, 1)
    assert.equal(wx.calls.checkSession, 1)
    const sent = wx.calls.request.at(-1).header.Authorization
    assert.equal(sent, `Bearer ${token}`)
    // A second client over the same storage (the app restarted) reuses it too.
    const again = sessionClient(wx)
    assert.equal(await again.wx.token(), token)
    assert.equal(wx.calls.login, 1)
  })

  it('logs in again when wx.checkSession fails or the stored token has expired', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const first = await c.wx.token()
    wx.sessionValid = false
    const second = await c.wx.token()
    assert.notEqual(second, first)
    assert.equal(wx.calls.login, 2)
    wx.sessionValid = true
    wx.setStorageSync('gatehouse:token', { token: second, tokenExpired: Date.now() - 1 })
    const checks = wx.calls.checkSession
    const third = await c.wx.token()
    assert.notEqual(third, second)
    assert.equal(wx.calls.login, 3)
    assert.equal(wx.calls.checkSession, checks, 'an expired token is not even checked')
  })

  it('logs in again and retries once when the server says session-invalid', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const old = await c.wx.token()
    // The session ends behind the client's back.
    const ended = await fetch(`${server.url}/wx/session`, { method: 'DELETE', headers: { Authorization: `Bearer ${old}` } })
    assert.equal(ended.status, 200)
    const me = await c.wx.get()
    assert.equal(me.errCode, 0)
    assert.equal(wx.calls.login, 2)
    const now = wx.storage.get('gatehouse:token').token
    assert.notEqual(now, old)
    const statuses = wx.calls.request.filter((r) => r.url.endsWith('/wx/session')).map((r) => r.header.Authorization)
    assert.deepEqual(statuses, [`Bearer ${old}`, `Bearer ${now}`])
  })

  it("behind the authorizer, API Gateway's bare 403 with a dead session logs in again and retries once", async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const old = await c.wx.token()
    const ended = await fetch(`${server.url}/wx/session`, { method: 'DELETE', headers: { Authorization: `Bearer ${old}` } })
    assert.equal(ended.status, 200)
    const me = await c.wx.request('GET', '/me')
    assert.equal(me.errCode, 0)
    assert.equal(wx.calls.login, 2)
    const now = wx.storage.get('gatehouse:token').token
    const sent = wx.calls.request.map((r) => [new URL(r.url).pathname, r.header.Authorization || ''])
    assert.deepEqual(sent, [
      ['/wx/login', ''],
      ['/me', `Bearer ${old}`],
      ['/wx/session', `Bearer ${old}`],
      ['/wx/login', ''],
      ['/me', `Bearer ${now}`],
    ])
  })

  it('a 403 with a live session is not a lost session: no new login, the 403 stands', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    await c.wx.token()
    // GUARD_ROUTES of the tests: POST /demo/guarded always asks for a pass.
    const err = await failure(c.wx.request('POST', '/demo/guarded', { body: {} }))
    assert.equal(err.errCode, 'http-403')
    assert.equal(wx.calls.login, 1)
  })

  it('logout: DELETE /wx/session ends the token on the server and forgets it', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const token = await c.wx.token()
    await c.wx.logout()
    assert.equal(wx.storage.has('gatehouse:token'), false)
    const res = await fetch(`${server.url}/wx/session`, { headers: { Authorization: `Bearer ${token}` } })
    assert.equal(res.status, 401)
    assert.equal((await res.json()).errCode, 'session-invalid')
    const requests = wx.calls.request.length
    await c.wx.logout()
    assert.equal(wx.calls.request.length, requests, 'nothing to end: no request')
  })

  it('requests fired together share one login', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const [a, b, d] = await Promise.all([c.wx.get(), c.wx.get(), c.wx.token()])
    assert.equal(a.openid, b.openid)
    assert.equal(typeof d, 'string')
    assert.equal(wx.calls.login, 1)
  })

  it('a refused code rejects with its errCode and stores nothing; user data comes back as userInfo', async () => {
    const wx = fakePlatform(server)
    const c = sessionClient(wx, { locale: 'en' })
    wx.nextCode = 'errcode-40029'
    const err = await failure(c.wx.login())
    assert.equal(err.errCode, 'wx-code-invalid')
    assert.equal(err.status, 400)
    assert.equal(wx.storage.has('gatehouse:token'), false)

    const code = await server.wxCode('bob')
    const user = await server.wxUserInfo(code, { nickName: 'Bob', gender: 1 })
    wx.nextCode = code
    const res = await c.wx.login({ encryptedData: user.encryptedData, iv: user.iv })
    assert.equal(res.userInfo.nickName, 'Bob')
    assert.equal(res.userInfo.openId, undefined)
  })

  it('without the wx object, login says so', async () => {
    const err = await failure(client().wx.login())
    assert.equal(err.errCode, 'wx-unavailable')
  })
})

describe('Tencent tickets', () => {
  it('web: the TencentCaptcha callback result verifies once', async () => {
    const c = client()
    const solved = await server.tencentTicket()
    const res = await c.ticket.fromWeb({ ret: 0, ticket: solved.ticket, randstr: solved.randstr, CaptchaAppId: solved.appid })
    assert.equal(res.errCode, 0)
    assert.equal(res.evilLevel, 0)
    const again = await failure(c.ticket.fromWeb({ ret: 0, ticket: solved.ticket, randstr: solved.randstr }))
    assert.equal(again.errCode, 'ticket-reused')
    assert.equal(again.status, 409)
  })

  it('web: a closed captcha is null without a request; a disaster-recovery ticket goes to the server, which refuses it by default', async () => {
    const sent = []
    const transport = fetchTransport()
    const c = client({ transport: (req) => (sent.push(req), transport(req)) })
    assert.equal(await c.ticket.fromWeb({ ret: 2 }), null)
    assert.equal(sent.length, 0)
    const err = await failure(c.ticket.fromWeb({ ret: 0, ticket: 'trerror_1001_190000000_1700000000', randstr: '@x', errorCode: 1001 }))
    assert.equal(err.errCode, 'ticket-rejected')
    assert.equal(err.data.captchaCode, 21)
    assert.equal(sent.length, 1)
  })

  it('mini-program: the App.onShow jump result verifies, read once and never handed on twice', async () => {
    const sent = []
    const transport = fetchTransport()
    const c = client({ transport: (req) => (sent.push(req), transport(req)) })
    const solved = await server.tencentTicket()
    const show = () => ({ scene: 1038, referrerInfo: { appId: TENCENT_CAPTCHA_MINIPROGRAM, extraData: { ret: 0, ticket: solved.ticket } } })
    const options = show()
    const res = await c.ticket.fromShow(options)
    assert.equal(res.errCode, 0)
    assert.deepEqual(sent.at(-1).body, { ticket: solved.ticket }, 'no randstr from the mini-program')
    assert.equal(options.referrerInfo.extraData, null, 'extraData is cleared')
    assert.equal(await c.ticket.fromShow(options), null, 'the same onShow options again')
    assert.equal(c.ticket.take(show()), null, 'the same ticket in new options')
    assert.equal(sent.length, 1)
  })

  it('mini-program: other apps, unsolved results and missing data are not tickets', async () => {
    const c = client()
    const other = { referrerInfo: { appId: 'wx0000000000000000', extraData: { ret: 0, ticket: 'x' } } }
    assert.equal(c.ticket.take(other), null)
    assert.deepEqual(other.referrerInfo.extraData, { ret: 0, ticket: 'x' }, "another app's data is left alone")
    const closed = { referrerInfo: { appId: TENCENT_CAPTCHA_MINIPROGRAM, extraData: { ret: 2 } } }
    assert.equal(c.ticket.take(closed), null)
    assert.equal(closed.referrerInfo.extraData, null)
    assert.equal(c.ticket.take({}), null)
    assert.equal(c.ticket.take(undefined), null)
    assert.deepEqual(c.ticket.take({ referrerInfo: { appId: TENCENT_CAPTCHA_MINIPROGRAM, extraData: { ret: 0, ticket: 'force-pass~take' } } }), {
      ticket: 'force-pass~take',
    })
  })
})

describe('transports and storage', () => {
  for (const [name, make] of [
    ['fetch', () => ({ transport: fetchTransport(), platform: null })],
    ['uni.request', () => {
      const uni = fakePlatform(server)
      return { transport: uniTransport(uni), platform: uni }
    }],
    ['wx.request', () => {
      const wx = fakePlatform(server)
      return { transport: wxTransport(wx), platform: wx }
    }],
  ]) {
    it(`${name}: a captcha round trip, headers, a 429 with retryAfter, and no answer`, async () => {
      const { transport, platform } = make()
      const c = client({ transport, locale: 'en' })
      await c.captcha.create('login')
      const answer = await server.answer('login', await c.deviceId())
      assert.equal((await c.captcha.verify('login', answer)).errCode, 0)
      await c.captcha.create('limited')
      const limited = await failure(c.captcha.create('limited'))
      assert.equal(limited.status, 429)
      assert.ok(limited.retryAfter >= 1)
      assert.doesNotMatch(limited.errMsg, CJK)
      if (platform) {
        assert.equal(platform.calls.request.length, 4)
        const last = platform.calls.request.at(-1)
        assert.equal(last.method, 'POST')
        assert.equal(last.header['X-Device-Id'], await c.deviceId())
        assert.equal(last.header['Accept-Language'], 'en')
        assert.deepEqual(last.data, { scene: 'limited' })
      }
      const dead = await failure(createClient({ baseUrl: 'http://127.0.0.1:1', transport, deviceId: 'd' }).captcha.create('login'))
      assert.equal(dead.errCode, 'network-error')
      assert.equal(dead.status, 0)
    })
  }

  it('webStorage and uniStorage keep the session across clients', async () => {
    const wx = fakePlatform(server)
    const local = fakeWebStorage()
    const a = client({ storage: webStorage(local), wx })
    const token = await a.wx.token()
    assert.deepEqual(JSON.parse(local.items.get('gatehouse:token')).token, token)
    const b = client({ storage: webStorage(local), wx })
    assert.equal(await b.wx.token(), token)
    const uni = fakePlatform(server)
    const c = client({ storage: uniStorage(uni), wx: uni, prefix: 'app1:' })
    const t = await c.wx.token()
    assert.equal(uni.storage.get('app1:token').token, t)
    assert.equal(wx.calls.login + uni.calls.login, 2)
  })
})

describe('the dev server test hook', () => {
  it('answers only with GATEHOUSE_TEST_HOOKS=1', async () => {
    const c = client()
    await c.captcha.create('login')
    assert.match(await server.answer('login', await c.deviceId()), /^[a-z0-9]{4}$/)
    const missing = await fetch(`${server.url}/__test/captcha?scene=login&deviceId=nobody`)
    assert.equal(missing.status, 404)
    assert.equal((await missing.json()).errCode, 'not-found')

    const plain = await startDevServer({ env: { GATEHOUSE_TEST_HOOKS: '' } })
    try {
      const other = createClient({ baseUrl: plain.url, deviceId: 'hookless' })
      await other.captcha.create('login')
      const res = await fetch(`${plain.url}/__test/captcha?scene=login&deviceId=hookless`)
      assert.equal(res.status, 404)
      assert.equal((await res.json()).errCode, 'invalid-request', "the dev server's ordinary 404")
    } finally {
      await plain.stop()
    }
  })
})
