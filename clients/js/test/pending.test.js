// Client functions of the routes that came after the first client: SPEC §9,
// the guard, and SPEC §10, WeChat sessions. Each test first makes sure its
// route exists: a 404 fails the test, saying which route is missing (a
// skipped test would count as a pass and hide the gap).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { wxStorage, wxTransport } from '../dist/index.mjs'
import { failure } from './assertions.js'
import { clientsOf, devServerForTests } from './devserver.js'
import { fakePlatform } from './fakes.js'

const server = devServerForTests()
const client = clientsOf(server, 'pending')

/** Fails unless the dev server has a route for `method path` (anything but 404). */
async function assertRoute(method, path, spec) {
  const res = await fetch(server.url + path, { method, headers: { 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' })
  await res.arrayBuffer()
  assert.notEqual(res.status, 404, `${method} ${path} answers 404: the dev server lacks a route of ${spec}`)
}

it('a route the dev server lacks fails the test that needs it (no skip)', async () => {
  await assert.rejects(assertRoute('POST', '/no/such/route', 'nothing'), /POST \/no\/such\/route answers 404/)
})


/** Solves an image captcha of `scene` for `c` (the test hook knows the answer) and returns its verify result. */
async function solveCaptcha(c, scene) {
  await c.captcha.create(scene)
  return c.captcha.verify(scene, await server.answer(scene, await c.deviceId()))
}

describe('the guard (SPEC §9)', () => {
  it('guard.status(scene) answers the level for this device', async () => {
    await assertRoute('GET', '/guard/status?scene=demo', 'SPEC §9')
    const sent = []
    const c = client({ transport: (req) => (sent.push(req), fetchJson(req)) })
    const res = await c.guard.status('demo')
    assert.equal(res.errCode, 0)
    assert.ok(['none', 'image', 'tencent'].includes(res.level), res.level)
    assert.match(sent[0].url, /\/guard\/status\?scene=demo$/)
    assert.equal(sent[0].headers['X-Device-Id'], await c.deviceId())
  })

  it('a captcha verify earns a pass; guard.request gets one on a 403 and retries once', async () => {
    await assertRoute('GET', '/guard/status?scene=demo', 'SPEC §9')
    const c = client()
    const direct = await solveCaptcha(c, 'demo')
    assert.equal(typeof direct.passToken, 'string')
    assert.ok(direct.passToken.length >= 22 && direct.passToken.length <= 128)
    assert.ok(direct.passExpired > Date.now())

    const asked = []
    const res = await c.guard.request('demo', 'POST', '/demo/guarded', { body: {} }, async (need) => {
      asked.push(need)
      return (await solveCaptcha(c, need.scene)).passToken
    })
    assert.equal(res.errCode, 0)
    assert.equal(res.guard.passKind, 'captcha')
    assert.equal(res.guard.scene, 'demo')
    assert.deepEqual(asked, [{ level: 'image', scene: 'demo' }])
  })

  it('a pass works once; giving up keeps the 403', async () => {
    await assertRoute('GET', '/guard/status?scene=demo', 'SPEC §9')
    const c = client()
    const { passToken } = await solveCaptcha(c, 'demo')
    assert.equal((await c.request('POST', '/demo/guarded', { body: {}, pass: passToken })).errCode, 0)
    const reused = await failure(c.request('POST', '/demo/guarded', { body: {}, pass: passToken }))
    assert.equal(reused.status, 403)
    let asked = 0
    const gaveUp = await failure(c.guard.request('demo', 'POST', '/demo/guarded', { body: {} }, () => (asked++, null)))
    assert.equal(gaveUp.status, 403)
    assert.equal(asked, 1)
  })

  it('a Tencent ticket with a scene earns a ticket pass', async () => {
    await assertRoute('GET', '/guard/status?scene=demo', 'SPEC §9')
    const c = client()
    const solved = await server.tencentTicket()
    const res = await c.ticket.fromWeb({ ret: 0, ticket: solved.ticket, randstr: solved.randstr }, { scene: 'demo' })
    assert.equal(typeof res.passToken, 'string')
    const guarded = await c.request('POST', '/demo/guarded', { body: {}, pass: res.passToken })
    assert.equal(guarded.guard.passKind, 'ticket')
  })
})

describe('WeChat sessions (SPEC §10)', () => {
  const sessionClient = (wx) => client({ transport: wxTransport(wx), storage: wxStorage(wx), wx })

  it('wx.refresh() swaps the token: the old one ends, the new one is stored', async () => {
    await assertRoute('POST', '/wx/session/refresh', 'SPEC §10')
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const old = await c.wx.token()
    const res = await c.wx.refresh()
    assert.notEqual(res.token, old)
    assert.ok(res.tokenExpired > Date.now())
    assert.deepEqual(wx.storage.get('gatehouse:token'), { token: res.token, tokenExpired: res.tokenExpired })
    assert.equal(await sessionStatus(old), 401)
    assert.equal(await sessionStatus(res.token), 200)
    assert.equal(wx.calls.login, 1)
  })

  it('wx.logoutEverywhere() ends every session of the user', async () => {
    await assertRoute('DELETE', '/wx/sessions', 'SPEC §10')
    const phone = fakePlatform(server, { user: `everywhere-${process.pid}` })
    const tablet = fakePlatform(server, { user: `everywhere-${process.pid}` })
    const a = sessionClient(phone)
    const b = sessionClient(tablet)
    const tokenB = await b.wx.token()
    await a.wx.token()
    await a.wx.logoutEverywhere()
    assert.equal(phone.storage.has('gatehouse:token'), false)
    assert.equal(await sessionStatus(tokenB), 401)
  })

  it('wx.phone(code) posts the code with the session; a bad code is a 400 that keeps the session', async () => {
    await assertRoute('POST', '/wx/phone', 'SPEC §10')
    const wx = fakePlatform(server)
    const c = sessionClient(wx)
    const token = await c.wx.token()
    const err = await failure(c.wx.phone(`no-such-code-${process.pid}`))
    assert.equal(err.status, 400)
    assert.ok(!err.errCode.startsWith('session-'), err.errCode)
    const sent = wx.calls.request.at(-1)
    assert.equal(sent.header.Authorization, `Bearer ${token}`)
    assert.deepEqual(sent.data, { code: `no-such-code-${process.pid}` })
    assert.equal(await sessionStatus(token), 200)

    // The button's code from the emulator: the number comes back, once.
    const code = await server.wxPhoneCode({ purePhoneNumber: '13800138000' })
    const before = await server.wxCalls()
    const phone = await c.wx.phone(code)
    assert.equal(phone.errCode, 0)
    assert.equal(phone.phoneNumber, '13800138000')
    assert.equal(phone.purePhoneNumber, '13800138000')
    assert.equal(phone.countryCode, '86')
    const after = await server.wxCalls()
    assert.equal(after.getuserphonenumber - before.getuserphonenumber, 1)
    assert.ok(after.stableToken <= 1, 'one access token for the whole server')
    const again = await failure(c.wx.phone(code))
    assert.equal(again.errCode, 'wx-phone-code-invalid')
    assert.equal(again.status, 400)
  })

  it('wx.login({ single: true }) ends the other sessions of the user', async () => {
    await assertRoute('DELETE', '/wx/sessions', 'SPEC §10')
    const user = `single-${process.pid}`
    const phone = sessionClient(fakePlatform(server, { user }))
    const tablet = sessionClient(fakePlatform(server, { user }))
    const old = await phone.wx.token()
    const res = await tablet.wx.login({ single: true })
    assert.equal(await sessionStatus(old), 401)
    assert.equal(await sessionStatus(res.token), 200)
  })
})

async function sessionStatus(token) {
  const res = await fetch(`${server.url}/wx/session`, { headers: { Authorization: `Bearer ${token}` } })
  await res.arrayBuffer()
  return res.status
}

async function fetchJson({ method, url, headers, body }) {
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  return { status: res.status, headers: (name) => res.headers.get(name), data: await res.json() }
}
