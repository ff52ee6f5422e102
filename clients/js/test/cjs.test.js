// The CommonJS build as an older WeChat base library runs it: in a vm
// context whose only host object is `wx` (no globalThis, fetch, URL,
// TextEncoder, crypto, timers) and whose built-ins newer than ES2017 are
// gone, it creates and verifies a captcha against the real dev server, and
// the pass opens the guarded route.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import vm from 'node:vm'

import { devServerForTests } from './devserver.js'
import { nodeWx } from './wx.js'

const BUILD = readFileSync(new URL('../miniprogram/index.js', import.meta.url), 'utf8')

/** What ES2018 and later added, removed from the context's own built-ins. */
const NEWER = `
  delete globalThis.Promise.prototype.finally
  delete globalThis.Promise.allSettled
  delete globalThis.Promise.any
  delete globalThis.Promise.withResolvers
  delete globalThis.Object.fromEntries
  delete globalThis.Object.hasOwn
  delete globalThis.Object.groupBy
  for (const name of ['flat', 'flatMap', 'at', 'findLast', 'findLastIndex', 'toSorted', 'toReversed', 'toSpliced', 'with']) {
    delete globalThis.Array.prototype[name]
    delete globalThis.Uint8Array.prototype.__proto__[name]
  }
  for (const name of ['trimStart', 'trimEnd', 'matchAll', 'replaceAll', 'at', 'isWellFormed', 'toWellFormed']) {
    delete globalThis.String.prototype[name]
  }
  delete globalThis.WeakRef
  delete globalThis.FinalizationRegistry
  delete globalThis.AggregateError
  delete globalThis.BigInt
  delete globalThis.globalThis
`

/** A context like a mini-program's: `wx` and ES2017, and the CommonJS build loaded into it as `module`. */
function miniProgramContext(wx) {
  const context = vm.createContext({ wx })
  vm.runInContext(NEWER, context)
  const hosts = vm.runInContext(
    `['globalThis', 'fetch', 'URL', 'TextEncoder', 'crypto', 'setTimeout', 'AbortController', 'require', 'process']
      .filter((name) => { try { return eval('typeof ' + name) !== 'undefined' } catch (e) { return true } })`,
    context,
  )
  assert.deepEqual([...hosts], [], 'the context has nothing but wx')
  assert.equal(vm.runInContext('typeof Promise.prototype.finally + typeof Object.fromEntries', context), 'undefinedundefined')
  const wrapper = vm.runInContext(`(function (module, exports) {${BUILD}\n})`, context, { filename: 'miniprogram/index.js' })
  const module = vm.runInContext('({ exports: {} })', context)
  wrapper(module, module.exports)
  context.module = module
  return context
}

const server = devServerForTests()

describe('the CommonJS build in a context with only wx', () => {
  it('creates and verifies a captcha against the dev server; the device id comes from wx.getRandomValues', async () => {
    const wx = nodeWx(server)
    const context = miniProgramContext(wx)
    context.BASE = server.url
    // As an app.js would: require('gatehouse-client') is module.exports here.
    const app = vm.runInContext(
      `const { createClient, wxTransport, wxStorage } = module.exports
       const gatehouse = createClient({ baseUrl: BASE, transport: wxTransport(wx), storage: wxStorage(wx), wx })
       ;({ gatehouse })`,
      context,
    )
    const image = await app.gatehouse.captcha.create('demo')
    assert.match(image.captchaBase64, /^data:image\/png;base64,/)
    const deviceId = await app.gatehouse.deviceId()
    assert.match(deviceId, /^[0-9a-f]{32}$/)
    assert.equal(wx.calls.getRandomValues, 1)
    assert.equal(wx.storage.get('gatehouse:deviceId'), deviceId)
    assert.equal(wx.calls.request[0].header['X-Device-Id'], deviceId)

    const answer = await server.answer('demo', deviceId)
    const wrong = await app.gatehouse.captcha.verify('demo', answer === 'zzzz' ? 'yyyy' : 'zzzz').catch((err) => err)
    assert.equal(wrong.errCode, 'uni-captcha-verify-fail')
    assert.equal(wrong.name, 'GatehouseError')
    assert.equal(vm.runInContext('module.exports.WRONG_ANSWER', context).includes(wrong.errCode), true)

    await app.gatehouse.captcha.refresh('demo')
    const verified = await app.gatehouse.captcha.verify('demo', await server.answer('demo', deviceId))
    assert.equal(verified.errCode, 0)
    assert.equal(typeof verified.passToken, 'string')
    const guarded = await app.gatehouse.request('POST', '/demo/guarded', { body: {}, pass: verified.passToken })
    assert.equal(guarded.guard.passKind, 'captcha')
    assert.equal(guarded.guard.deviceId, deviceId)
  })

  it('without any CSPRNG the device id is refused, never made up: nothing is sent', async () => {
    const wx = nodeWx(server, { random: false })
    const context = miniProgramContext(wx)
    const gatehouse = vm.runInContext(
      `module.exports.createClient({ baseUrl: 'http://127.0.0.1:9', transport: module.exports.wxTransport(wx), wx })`,
      context,
    )
    const err = await gatehouse.captcha.create('demo').catch((e) => e)
    assert.equal(err.errCode, 'random-unavailable')
    assert.match(err.errMsg, /deviceId/)
    assert.equal(wx.calls.request.length, 0)
    // A given device id needs no randomness.
    context.BASE = server.url
    const given = vm.runInContext(
      `module.exports.createClient({ baseUrl: BASE, transport: module.exports.wxTransport(wx), deviceId: 'given-${process.pid}' })`,
      context,
    )
    assert.equal((await given.captcha.create('demo')).errCode, 0)
  })

  it('without fetch, the default transport says so', async () => {
    const context = miniProgramContext(nodeWx(server))
    const gatehouse = vm.runInContext(`module.exports.createClient({ baseUrl: 'http://127.0.0.1:9', deviceId: 'd' })`, context)
    const err = await gatehouse.captcha.create('demo').catch((e) => e)
    assert.equal(err.errCode, 'fetch-unavailable')
    assert.match(err.errMsg, /wxTransport/)
  })
})
