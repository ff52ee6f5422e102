// Starts the real dev server (`gatehouse-local`, built by
// `cargo build --workspace --bin gatehouse-local --tests`) on a free port with its test hooks on,
// and reads the emulators' addresses from what it prints.

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { after, before } from 'node:test'
import { fileURLToPath } from 'node:url'

import { createClient } from '../dist/index.mjs'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

/** The scenes the tests use: no per-IP limits (every test comes from 127.0.0.1). */
export const CAPTCHA_CONFIG = {
  rateLimit: {
    createPerIp: 0,
    refreshPerIp: 0,
    verifyPerIp: 0,
    wxLoginPerIp: 0,
    ticketPerIp: 0,
    createPerDevice: 0,
    refreshPerDevice: 0,
    smsSendPerIp: 0,
    smsVerifyPerIp: 0,
  },
  scene: {
    limited: { rateLimit: { createPerDevice: 1 } },
    // One verify per window from 127.0.0.1: the next one is a real 429.
    throttled: { rateLimit: { verifyPerIp: 1 } },
    math: { mathExpr: true, mathOperator: '-', mathMin: 1, mathMax: 9 },
    long: { size: 6 },
    sized: { clientSize: true },
    // Sign in by phone: a send needs a captcha pass first.
    phone: { guard: { mode: 'always' } },
    // A send a number may repeat after 10 s, three a day.
    sms: { sms: { resendSeconds: 10, perMobilePerDay: 3 } },
    // The guarded example route's scene (GUARD_ROUTES' scenes must be declared).
    demo: {},
  },
}

/** The guard's example route, always asking for a pass. */
export const GUARD_ROUTES = { 'POST /demo/guarded': { scene: 'demo', pass: 'always', session: false } }

export function devServerBinary() {
  const candidates = [
    process.env.GATEHOUSE_LOCAL_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug/gatehouse-local'),
    join(repo, 'target/debug/gatehouse-local'),
  ].filter(Boolean)
  const found = candidates.find((path) => existsSync(path))
  if (!found) {
    throw new Error(`gatehouse-local not found (looked at ${candidates.join(', ')}): run cargo build -p gatehouse-local first`)
  }
  return found
}

/**
 * { url, wechat, tencent, sms, stop(), answer(scene, deviceId), wxCode(user), wxPhoneCode(phone), wxCalls(),
 *   tencentTicket(), smsInbox(mobile), smsCode(mobile) }
 */
export async function startDevServer({ env = {} } = {}) {
  const childEnv = { ...process.env }
  for (const key of ['TABLE_NAME', 'WX_APPID', 'TENCENT_SECRET_ID', 'SMS_SDK_APP_ID', 'DYNAMODB_ENDPOINT']) delete childEnv[key]
  Object.assign(childEnv, {
    PORT: '0',
    GATEHOUSE_TEST_HOOKS: '1',
    CAPTCHA_CONFIG: JSON.stringify(CAPTCHA_CONFIG),
    GUARD_ROUTES: JSON.stringify(GUARD_ROUTES),
    RUST_LOG: 'warn',
    ...env,
  })
  const child = spawn(devServerBinary(), [], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))

  const addresses = await new Promise((resolvePromise, reject) => {
    let out = ''
    const guard = setTimeout(() => fail(new Error('gatehouse-local did not start within 30 s')), 30000)
    function fail(err) {
      clearTimeout(guard)
      child.kill()
      reject(new Error(`${err.message}\nstdout: ${out}\nstderr: ${stderr}`))
    }
    child.on('exit', (code) => fail(new Error(`gatehouse-local exited with ${code}`)))
    child.stdout.on('data', (chunk) => {
      out += chunk
      const url = /listening on (http:\/\/\S+?)\/? /.exec(out)
      const wechat = /WeChat emulator at (http:\/\/\S+)/.exec(out)
      const tencent = /Tencent captcha emulator at (http:\/\/\S+)/.exec(out)
      const sms = /Tencent SMS emulator at (http:\/\/\S+)/.exec(out)
      if (url && wechat && tencent && sms) {
        clearTimeout(guard)
        child.removeAllListeners('exit')
        resolvePromise({ url: url[1], wechat: wechat[1], tencent: tencent[1], sms: sms[1] })
      }
    })
  })
  child.stdout.resume()
  const stopOnExit = () => child.kill()
  process.on('exit', stopOnExit)

  const post = async (url, body) => {
    const res = await fetch(url, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body) })
    return res.json()
  }
  return {
    ...addresses,
    async stop() {
      process.off('exit', stopOnExit)
      if (child.exitCode !== null) return
      const exited = new Promise((done) => child.once('exit', done))
      child.kill()
      await exited
    },
    /** The stored answer of a captcha, through the test hook. */
    async answer(scene, deviceId) {
      const res = await fetch(`${addresses.url}/__test/captcha?scene=${encodeURIComponent(scene)}&deviceId=${encodeURIComponent(deviceId)}`)
      const body = await res.json()
      if (res.status !== 200) throw new Error(`test hook: ${res.status} ${JSON.stringify(body)}`)
      return body.code
    },
    /** A fresh wx.login code from the WeChat emulator. */
    async wxCode(user = 'alice') {
      return (await post(`${addresses.wechat}/emulator/wx.login`, { user })).code
    },
    /** A solved web captcha from the Tencent emulator: { ret, ticket, randstr, appid }. */
    tencentTicket: () => post(`${addresses.tencent}/emulator/ticket`),
    /** What <button open-type="getPhoneNumber"> hands the page: a phone code from the WeChat emulator. */
    async wxPhoneCode(phone = {}) {
      return (await post(`${addresses.wechat}/emulator/getPhoneNumber`, phone)).code
    },
    /** The WeChat emulator's request counters: { jscode2session, stableToken, forceRefresh, getuserphonenumber }. */
    async wxCalls() {
      return (await fetch(`${addresses.wechat}/emulator/calls`)).json()
    },
    /** The messages the SMS emulator delivered to `mobile`: [{ text, params, sentAt }], oldest first. */
    async smsInbox(mobile) {
      const res = await fetch(`${addresses.sms}/emulator/sms?mobile=${encodeURIComponent(mobile)}`)
      return (await res.json()).messages
    },
    /** The code of the last message `mobile` received, read as a phone would. */
    async smsCode(mobile) {
      const messages = await this.smsInbox(mobile)
      if (!messages.length) throw new Error(`no message to ${mobile}`)
      return messages[messages.length - 1].params[0]
    },
    /** wx.getUserInfo's answer for a code: { encryptedData, iv, rawData, signature, userInfo }. */
    wxUserInfo: (code, userInfo) => post(`${addresses.wechat}/emulator/wx.getUserInfo`, { code, userInfo }),
  }
}

/**
 * The dev server of a test file (or of the describe it is called in):
 * started before its tests and stopped after them, `onStop` first. The
 * object it returns is filled in with startDevServer's once the server runs.
 */
export function devServerForTests(onStop = () => {}) {
  const server = {}
  before(async () => {
    Object.assign(server, await startDevServer())
  })
  after(() => {
    onStop()
    return server.stop && server.stop()
  })
  return server
}

/** createClient for `server` on a new device (`<prefix>-<pid>-<n>`) each call, `options` over those. */
export function clientsOf(server, prefix) {
  let devices = 0
  return (options = {}) => createClient({ baseUrl: server.url, deviceId: `${prefix}-${process.pid}-${++devices}`, ...options })
}
