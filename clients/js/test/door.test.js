// The short way (issue 22, SPEC §13): guard.run / guard.request hand the
// door the challenge itself, an answer or a Tencent ticket, with the
// business request: create + the request, two requests in all. First the
// client's own rules over a recording transport, then the whole flow
// against the real dev server, its requests counted.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { createClient } from '../dist/index.mjs'
import { failure } from './assertions.js'
import { devServerForTests } from './devserver.js'


/** A transport that records each request and answers with `answer(req)` ({ status, data }). */
function recording(answer) {
  const sent = []
  const transport = (req) => {
    sent.push(req)
    const { status = 200, data = { errCode: 0 } } = answer(req) || {}
    return Promise.resolve({ status, headers: () => undefined, data })
  }
  return { sent, transport }
}
const denied = { status: 403, data: { message: 'Forbidden' } }
const isStatus = (req) => req.url.includes('/guard/status')

describe('the short way: what the client sends', () => {
  it('each kind of proof goes in its headers: a pass, an answer (with its device), a ticket', async () => {
    const { sent, transport } = recording(() => null)
    const c = createClient({ baseUrl: 'http://api', transport, deviceId: 'mine' })
    await c.request('POST', '/x', { pass: 'p4ss' })
    await c.request('POST', '/x', { pass: { captcha: ' aB3d ' } })
    await c.request('POST', '/x', { pass: { captcha: '7', deviceId: 'other', scene: 'demo' } })
    await c.request('POST', '/x', { pass: { ret: 0, ticket: 't03x', randstr: '@r', appid: '1', bizState: 5 } })
    await c.request('POST', '/x', { pass: { ticket: 'mini' } })
    const guardHeaders = sent.map((req) =>
      Object.fromEntries(Object.entries(req.headers).filter(([name]) => /^X-(Gatehouse|Device)/.test(name))),
    )
    assert.deepEqual(guardHeaders, [
      { 'X-Device-Id': 'mine', 'X-Gatehouse-Pass': 'p4ss' },
      { 'X-Device-Id': 'mine', 'X-Gatehouse-Captcha': 'aB3d' },
      { 'X-Device-Id': 'other', 'X-Gatehouse-Captcha': '7' },
      { 'X-Device-Id': 'mine', 'X-Gatehouse-Ticket': 't03x', 'X-Gatehouse-Randstr': '@r' },
      { 'X-Device-Id': 'mine', 'X-Gatehouse-Ticket': 'mini' },
    ])
  })

  it('a refused answer asks again (refused: true, the level read anew), three times at most', async () => {
    let levels = ['image', 'tencent', 'tencent']
    const { sent, transport } = recording((req) => (isStatus(req) ? { data: { errCode: 0, level: levels.shift() } } : denied))
    const c = createClient({ baseUrl: 'http://api', transport, deviceId: 'd' })
    const asked = []
    const err = await failure(c.guard.request('demo', 'POST', '/x', {}, (need) => (asked.push(need), { captcha: 'wrong' })))
    assert.equal(err.status, 403)
    assert.deepEqual(asked, [
      { level: 'image', scene: 'demo' },
      { level: 'tencent', scene: 'demo', refused: true },
      { level: 'tencent', scene: 'demo', refused: true },
    ])
    assert.deepEqual(
      sent.map((req) => new URL(req.url).pathname),
      ['/x', '/guard/status', '/x', '/guard/status', '/x', '/guard/status', '/x'],
    )
  })

  it('with { level } the challenge comes first: no probe, no status; giving up there is challenge-cancelled', async () => {
    const { sent, transport } = recording(() => null)
    const c = createClient({ baseUrl: 'http://api', transport, deviceId: 'd' })
    const res = await c.guard.request('demo', 'POST', '/x', { body: {} }, () => ({ captcha: 'ab' }), { level: 'image' })
    assert.equal(res.errCode, 0)
    assert.equal(sent.length, 1)
    assert.equal(sent[0].headers['X-Gatehouse-Captcha'], 'ab')

    const err = await failure(c.guard.run('demo', () => assert.fail('nothing to send'), () => null, { level: 'image' }))
    assert.equal(err.errCode, 'challenge-cancelled')
  })

  it('a closed Tencent captcha (ret 2) or an empty answer gives up: the 403 stands', async () => {
    for (const given of [{ ret: 2, ticket: '', randstr: '' }, { captcha: '  ' }, null]) {
      const { sent, transport } = recording((req) => (isStatus(req) ? { data: { errCode: 0, level: 'tencent' } } : denied))
      const c = createClient({ baseUrl: 'http://api', transport, deviceId: 'd' })
      const err = await failure(c.guard.request('demo', 'POST', '/x', {}, () => given))
      assert.equal(err.status, 403, JSON.stringify(given))
      assert.equal(sent.length, 2, 'the probe and the status only')
    }
  })
})

describe('the short way against the dev server', () => {
  const server = devServerForTests()

  let devices = 0
  /** A client on a new device whose requests are counted by path. */
  function counted() {
    const paths = []
    const c = createClient({
      baseUrl: server.url,
      deviceId: `door-${process.pid}-${++devices}`,
      transport: async ({ method, url, headers, body }) => {
        paths.push(new URL(url).pathname)
        const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
        const text = await res.text()
        return { status: res.status, headers: (name) => res.headers.get(name), data: text ? JSON.parse(text) : text }
      },
    })
    return { c, paths }
  }

  it('an image captcha answered at the door: create + the request, two requests, passKind captcha', async () => {
    const { c, paths } = counted()
    const res = await c.guard.request('demo', 'POST', '/demo/guarded', { body: {} }, async ({ scene }) => {
      await c.captcha.create(scene)
      return { captcha: await server.answer(scene, await c.deviceId()) }
    }, { level: 'image' })
    assert.equal(res.guard.passKind, 'captcha')
    assert.equal(res.guard.deviceId, await c.deviceId())
    assert.deepEqual(paths, ['/captcha/create', '/demo/guarded'])
  })

  it('a wrong answer is refused at the door and spends the captcha; the next one asked for passes', async () => {
    const { c, paths } = counted()
    const asked = []
    const res = await c.guard.request('demo', 'POST', '/demo/guarded', { body: {} }, async (need) => {
      asked.push(need)
      await c.captcha.create(need.scene)
      const right = await server.answer(need.scene, await c.deviceId())
      return { captcha: asked.length === 1 ? (right === 'zzzz' ? 'yyyy' : 'zzzz') : right }
    })
    assert.equal(res.guard.passKind, 'captcha')
    assert.deepEqual(asked, [
      { level: 'image', scene: 'demo' },
      { level: 'image', scene: 'demo', refused: true },
    ])
    assert.equal(paths.filter((p) => p === '/captcha/verify').length, 0)
  })

  it('the Tencent callback object handed on as it comes: the door verifies the ticket once, passKind ticket', async () => {
    const { c, paths } = counted()
    const callback = await server.tencentTicket()
    assert.equal(callback.ret, 0)
    const res = await c.guard.request('demo', 'POST', '/demo/guarded', { body: {} }, () => callback, { level: 'tencent' })
    assert.equal(res.guard.passKind, 'ticket')
    assert.equal(res.guard.evilLevel, 0)
    assert.deepEqual(paths, ['/demo/guarded'])
    // Once: the same ticket again is refused.
    const again = await failure(c.request('POST', '/demo/guarded', { body: {}, pass: callback }))
    assert.equal(again.status, 403)
  })
})
