// captcha.flow, the rules every component follows, against the real dev
// server with a clock the test moves by hand. The transport between them
// can hold an answer back (to answer loads out of order) or fail a request
// (no network, 503), as a bad network does.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { GatehouseError, createClient, fetchTransport } from '../dist/index.mjs'
import { answered, manualClock, startOfRateWindow, until } from './clock.js'
import { devServerForTests } from './devserver.js'

const server = devServerForTests()

let devices = 0

/**
 * A client over a transport the test steers, a flow of `scene` on it, and
 * what the flow reported: { client, flow, clock, sent, held, events, answer() }.
 * `plan(request)` may answer a request itself: 'hold' keeps it until
 * `held[i].release()` (held in the order sent; `answered(held)` counts those
 * the server has answered), an Error fails it, an object answers it.
 */
function rig(scene, { lifetime, plan = () => null } = {}) {
  const clock = manualClock()
  const device = `flow-${process.pid}-${++devices}`
  const sent = []
  const held = []
  const real = fetchTransport()
  const transport = async (req) => {
    const path = new URL(req.url).pathname
    sent.push(path)
    const planned = plan(path, sent.filter((p) => p === path).length)
    if (planned instanceof Error) throw planned
    if (planned && planned !== 'hold') return { status: planned.status, headers: () => undefined, data: planned.data }
    // A held request takes its place in `held` when it is sent, so held[i]
    // is the i-th request whichever answer the server sends first.
    const slot = { path, res: undefined, release: undefined }
    if (planned === 'hold') held.push(slot)
    const res = await real(req)
    if (planned === 'hold') await new Promise((release) => Object.assign(slot, { res, release }))
    return res
  }
  const client = createClient({ baseUrl: server.url, deviceId: device, transport, clock })
  const events = { change: 0, passes: [], expired: [], errors: [] }
  const flow = client.captcha.flow(scene, {
    lifetime,
    onChange: () => events.change++,
    onPass: (result) => events.passes.push(result),
    onExpired: (event) => events.expired.push(event.kind),
    onError: (err, wrong) => events.errors.push({ errCode: err.errCode, wrong, retryAfter: err.retryAfter }),
  })
  return { client, flow, clock, sent, held, events, answer: () => server.answer(scene, device) }
}

const idle = (flow) => !flow.state.loading && !flow.state.verifying

describe('captcha.flow', () => {
  it('a load that a newer one superseded is dropped, whichever answer comes first', async () => {
    const { flow, held } = rig('login', { plan: (path) => (path === '/captcha/refresh' ? 'hold' : null) })
    await flow.start()
    const first = flow.state.image
    const older = flow.refresh()
    const newer = flow.refresh()
    await until(() => answered(held) === 2, 'both refreshes answered')
    const [olderAnswer, newerAnswer] = held.map((h) => h.res.data.captchaBase64)
    held[1].release()
    await newer
    assert.equal(flow.state.image, newerAnswer)
    held[0].release()
    await older
    assert.equal(flow.state.image, newerAnswer, 'the older answer came last and was dropped')
    assert.notEqual(olderAnswer, newerAnswer)
    assert.notEqual(first, newerAnswer)
    assert.equal(flow.state.loading, false)
  })

  it('one verify at a time: a second call gets the first one’s promise, and one request goes', async () => {
    const { flow, sent, events, answer } = rig('demo')
    await flow.start()
    const right = await answer()
    const a = flow.verify(right)
    const b = flow.verify(right)
    assert.equal(a, b)
    const result = await a
    assert.equal(result.errCode, 0)
    assert.equal(sent.filter((p) => p === '/captcha/verify').length, 1)
    assert.deepEqual(events.passes.map((p) => p.passToken), [result.passToken])
  })

  it('a wrong answer spends the captcha: the error says so and a new image comes', async () => {
    const { flow, events, answer } = rig('login')
    await flow.start()
    const shown = flow.state.image
    const right = await answer()
    assert.equal(await flow.verify(right === 'zzzz' ? 'yyyy' : 'zzzz'), null)
    assert.deepEqual(events.errors.map((e) => [e.errCode, e.wrong]), [['uni-captcha-verify-fail', true]])
    await until(() => flow.state.image !== shown && idle(flow), 'the new image')
    assert.equal(flow.state.error.errCode, 'uni-captcha-verify-fail', 'the message stays up with the new image')
    assert.notEqual(await answer(), right)
  })

  it('a 429 keeps the image and waits out retryAfter: nothing is sent until the wait is over', async () => {
    const { flow, clock, sent, events, answer } = rig('throttled')
    await flow.start()
    const shown = flow.state.image
    const right = await answer()
    await startOfRateWindow()
    // The scene allows one verify per window from this IP: spend it on a wrong answer.
    await flow.verify(right === 'zzzz' ? 'yyyy' : 'zzzz')
    await until(() => flow.state.image !== shown && idle(flow), 'the new image')
    const image = flow.state.image
    assert.equal(await flow.verify(await answer()), null)
    const limited = events.errors.at(-1)
    assert.deepEqual([limited.errCode, limited.wrong], ['rate-limited', false])
    assert.ok(limited.retryAfter >= 1, `retryAfter ${limited.retryAfter}`)
    assert.equal(flow.state.waiting, Math.ceil(limited.retryAfter))
    assert.equal(flow.state.image, image, 'the image stands')
    assert.equal(flow.state.error.errCode, 'rate-limited')

    const verifies = () => sent.filter((p) => p === '/captcha/verify').length
    const before = verifies()
    assert.equal(await flow.verify('anything'), null, 'no verify while waiting')
    await flow.refresh()
    assert.equal(verifies(), before)
    assert.equal(sent.at(-1), '/captcha/verify', 'no refresh while waiting either')
    clock.advance(1000)
    assert.equal(flow.state.waiting, Math.ceil(limited.retryAfter) - 1, 'counting down, one a second')
    clock.advance(Math.ceil(limited.retryAfter) * 1000)
    assert.equal(flow.state.waiting, 0)
    assert.equal(flow.state.error, null, 'the wait is over, and its message with it')
    await flow.verify('anything')
    assert.equal(verifies(), before + 1, 'after the wait the next verify goes out')
  })

  it('no network or a 503 keeps the image, the answer and the captcha; the next try can pass', async () => {
    let failWith = null
    const { flow, events, answer } = rig('login', { plan: (path) => (path === '/captcha/verify' ? failWith : null) })
    await flow.start()
    const shown = flow.state.image
    failWith = new GatehouseError('network-error', 'request failed: offline')
    assert.equal(await flow.verify(await answer()), null)
    failWith = { status: 503, data: { errCode: 'store-unavailable', errMsg: 'try again' } }
    assert.equal(await flow.verify(await answer()), null)
    assert.deepEqual(events.errors.map((e) => [e.errCode, e.wrong]), [['network-error', false], ['store-unavailable', false]])
    assert.equal(flow.state.waiting, 0, 'no Retry-After, no wait')
    assert.equal(flow.state.image, shown)
    failWith = null
    assert.equal((await flow.verify(await answer())).errCode, 0, 'the same captcha still passes')
  })

  it('the image refreshes by itself 10 s before the captcha’s lifetime ends, and says so', async () => {
    const { flow, clock, events, answer } = rig('login', { lifetime: 60 })
    await flow.start()
    const shown = flow.state.image
    const code = await answer()
    assert.equal(clock.untilNext(), 50_000)
    clock.advance(49_999)
    assert.deepEqual(events.expired, [])
    clock.advance(1)
    assert.deepEqual(events.expired, ['captcha'])
    await until(() => flow.state.image !== shown && idle(flow), 'the new image')
    assert.notEqual(await answer(), code, 'a new captcha on the server')
  })

  it('a pass left unused past passExpired is announced, and a new image comes', async () => {
    const { flow, clock, events } = rig('demo')
    await flow.start()
    const shown = flow.state.image
    const result = await flow.verify(await server.answer('demo', await flow.answer('').then((a) => a.deviceId)))
    assert.equal(clock.untilNext(), result.passExpired - clock.now())
    clock.advance(clock.untilNext())
    assert.deepEqual(events.expired, ['pass'])
    await until(() => flow.state.image !== shown && idle(flow), 'the new image')
  })

  it('answer() hands the caller { captcha, deviceId, scene }; stop() drops what is still on its way', async () => {
    const { flow, client, held, clock } = rig('login', { plan: (path) => (path === '/captcha/refresh' ? 'hold' : null) })
    await flow.start()
    assert.deepEqual(await flow.answer('AbC1'), { captcha: 'AbC1', deviceId: await client.deviceId(), scene: 'login' })
    const shown = flow.state.image
    const refresh = flow.refresh()
    await until(() => answered(held) === 1, 'the refresh answered')
    flow.stop()
    held[0].release()
    await refresh
    assert.equal(flow.state.image, shown)
    assert.equal(clock.untilNext(), Infinity, 'no timer left')
    assert.equal(await flow.verify('abcd'), null)
  })
})
