// gatehouse-client: the client side of gatehouse (image captchas, WeChat
// sessions, Tencent captcha tickets, SMS codes, the guard's passes), over uni.request,
// wx.request or fetch. No dependencies; see index.d.ts for the types.
//
// The one source of both builds (build.mjs: dist/index.mjs for bundlers,
// miniprogram/index.js in CommonJS for require and WeChat's "build npm").
// It runs where an older WeChat base library runs it: ES2017 built-ins only;
// `fetch`, `crypto` and `AbortController` read only when there (`typeof`),
// never through `globalThis`; timers only when a time-out or a widget needs one.
// Object.assign rather than object spread, which ES2017 lacks and esbuild
// would lower with helpers (some 300 bytes).

import { captchaFlow } from './flow.mjs'
import { smsFlow } from './sms.mjs'

export { WRONG_ANSWER } from './flow.mjs'

/** The captcha mini-program whose jump result arrives in App.onShow. */
export const TENCENT_CAPTCHA_MINIPROGRAM = 'wx5a3a7366fd07e119'

/** Every failure: the server's errCode/errMsg, or a network error (status 0). */
export class GatehouseError extends Error {
  constructor(errCode, errMsg, status = 0, data, retryAfter) {
    super(errMsg)
    this.name = 'GatehouseError'
    this.errCode = errCode
    this.errMsg = errMsg
    this.status = status
    this.data = data
    if (retryAfter !== undefined) this.retryAfter = retryAfter
  }
}

// ---- transports: (request) => Promise<{ status, headers, data }> ----------

/** A transport over `fetch` (browsers, Node 18+, or a given implementation). */
export function fetchTransport(fetchImpl, { timeout = 10000 } = {}) {
  return ({ method, url, headers, body }) => {
    const impl = fetchImpl || (typeof fetch === 'function' ? fetch : null)
    if (!impl) return Promise.reject(new GatehouseError('fetch-unavailable', 'no fetch here: give createClient a transport, e.g. wxTransport(wx)'))
    const abort = typeof AbortController === 'function' ? new AbortController() : null
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (abort) abort.abort()
        reject(networkError('timeout'))
      }, timeout)
      // JSON.stringify(undefined) is undefined: no body.
      const init = { method, headers, body: JSON.stringify(body) }
      if (abort) init.signal = abort.signal
      impl(url, init)
        .then((res) => res.text().then((text) => ({ status: res.status, headers: (name) => res.headers.get(name), data: parseJson(text) })))
        .then(resolve, (err) => reject(networkError(err && err.message)))
        .then(() => clearTimeout(timer))
    })
  }
}

/** A transport over `uni.request` (uni-app, every platform) or `wx.request` (WeChat mini-programs). */
export function uniTransport(api, { timeout = 10000 } = {}) {
  return ({ method, url, headers, body }) =>
    new Promise((resolve, reject) => {
      api.request({
        url,
        method,
        header: headers,
        data: body,
        timeout,
        dataType: 'json',
        success: (res) =>
          resolve({
            status: res.statusCode,
            headers: (name) => headerValue(res.header, name),
            data: typeof res.data === 'string' ? parseJson(res.data) : res.data,
          }),
        fail: (err) => reject(networkError(err && err.errMsg)),
      })
    })
}
export const wxTransport = uniTransport

function headerValue(headers, name) {
  const lower = name.toLowerCase()
  for (const key in headers) if (key.toLowerCase() === lower) return String(headers[key])
  return undefined
}

function parseJson(text) {
  try {
    return JSON.parse(text)
  } catch (notJson) {
    return text
  }
}

function networkError(detail) {
  return new GatehouseError('network-error', `request failed: ${detail || 'network error'}`)
}

// ---- storage: get/set/remove, synchronous or not ----------------------------

/** Storage in memory, for tests and for servers. */
export function memoryStorage() {
  const items = new Map()
  return {
    get: (key) => items.get(key),
    set: (key, value) => void items.set(key, value),
    remove: (key) => void items.delete(key),
  }
}

/** Storage over uni's or wx's *StorageSync functions. */
export function uniStorage(api) {
  return {
    get: (key) => api.getStorageSync(key) || undefined,
    set: (key, value) => api.setStorageSync(key, value),
    remove: (key) => api.removeStorageSync(key),
  }
}
export const wxStorage = uniStorage

/** Storage over a Web Storage object (`localStorage`, `sessionStorage`). */
export function webStorage(store) {
  return {
    get: (key) => {
      const text = store.getItem(key)
      return text === null ? undefined : JSON.parse(text)
    },
    set: (key, value) => store.setItem(key, JSON.stringify(value)),
    remove: (key) => store.removeItem(key),
  }
}

// ---- the client -----------------------------------------------------------

const SESSION_LOST = ['session-invalid', 'session-expired']

/**
 * The headers of what a door takes in place of nothing (SPEC §13), or null
 * when `proof` is none (nothing, an empty answer, a closed Tencent captcha):
 * a passToken (X-Gatehouse-Pass); an answer { captcha, deviceId? }
 * (X-Gatehouse-Captcha, with the device that created the captcha); a
 * Tencent ticket { ticket, randstr? }, the callback object as it comes
 * (X-Gatehouse-Ticket, X-Gatehouse-Randstr).
 */
function proofHeaders(proof) {
  if (!proof) return null
  if (typeof proof === 'string') return { 'X-Gatehouse-Pass': proof }
  if (proof.captcha !== undefined) {
    const answer = String(proof.captcha).trim()
    return answer ? clean({ 'X-Gatehouse-Captcha': answer, 'X-Device-Id': proof.deviceId }) : null
  }
  return proof.ret || !proof.ticket ? null : clean({ 'X-Gatehouse-Ticket': proof.ticket, 'X-Gatehouse-Randstr': proof.randstr })
}

/** The platform's clock; the timers are looked up when first used. */
const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
}

/**
 * createClient({ baseUrl, transport, storage, locale, deviceId, wx, prefix, clock })
 * - transport: fetchTransport() (the default), uniTransport(uni), wxTransport(wx)
 * - storage: uniStorage(uni), wxStorage(wx), webStorage(localStorage), memoryStorage() (the default)
 * - locale: 'en', 'zh-CN' … or a function returning one; sent as Accept-Language
 * - deviceId: a string or a (possibly async) function; by default a random id
 *   kept in storage, from crypto.getRandomValues or wx.getRandomValues
 * - wx: the `wx` or `uni` object whose login/checkSession the WeChat session
 *   uses, and whose getRandomValues makes the device id where `crypto` is missing
 * - clock: { now, setTimeout, clearTimeout }, the platform's by default
 */
export function createClient(options) {
  const baseUrl = String(options.baseUrl || '').replace(/\/+$/, '')
  const transport = options.transport || fetchTransport()
  const storage = options.storage || memoryStorage()
  const prefix = options.prefix || 'gatehouse:'
  const tokenKey = prefix + 'token'
  const clock = options.clock || systemClock

  let storedId
  async function deviceId() {
    const given = options.deviceId
    if (given) return typeof given === 'function' ? given() : given
    storedId = storedId || (async () => {
      let id = await storage.get(prefix + 'deviceId')
      if (!id) await storage.set(prefix + 'deviceId', (id = hex(await randomBytes(options.wx))))
      return id
    })().catch((err) => {
      storedId = null
      throw err
    })
    return storedId
  }

  /** One HTTP call; resolves the body on errCode 0, throws GatehouseError otherwise. */
  async function request(method, path, { body, query, headers, token, pass } = {}) {
    const locale = typeof options.locale === 'function' ? options.locale() : options.locale
    const all = Object.assign(
      { 'X-Device-Id': await deviceId() },
      headers,
      clean({
        'Content-Type': body === undefined ? null : 'application/json',
        'Accept-Language': locale,
        Authorization: token ? `Bearer ${token}` : null,
      }),
      proofHeaders(pass),
    )
    const res = await transport({ method, url: baseUrl + path + queryString(query), headers: all, body })
    const data = res.data
    const errCode = data && typeof data === 'object' ? data.errCode : undefined
    if (res.status >= 200 && res.status < 300 && (errCode === 0 || errCode === undefined)) return data
    throw new GatehouseError(
      typeof errCode === 'string' && errCode ? errCode : `http-${res.status}`,
      (data && (data.errMsg || data.message)) || `HTTP ${res.status}`,
      res.status,
      data,
      retryAfter(res.headers('retry-after'), clock.now()),
    )
  }

  // -- image captchas --------------------------------------------------------
  const image = (path) => (scene, size) => request('POST', path, { body: Object.assign({ scene }, size) })
  const captcha = {
    create: image('/captcha/create'),
    refresh: image('/captcha/refresh'),
    /** Resolves { errCode: 0, passToken?, passExpired? } (the pass once the guard is on). */
    verify: (scene, answer) => request('POST', '/captcha/verify', { body: { scene, captcha: answer } }),
    /** A captcha widget's state and rules, for the components (see flow.mjs). */
    flow: (scene, handlers) => captchaFlow({ captcha, clock, deviceId }, scene, handlers || {}),
  }

  // -- the guard -------------------------------------------------------------
  const guard = {
    status: (scene) => request('GET', '/guard/status', { query: { scene } }),
    /**
     * Runs a business request behind the guard. On a 403 asks the guard what
     * is needed and has `obtainPass({ level, scene })` meet it: a passToken
     * (the pass way), or the challenge itself for the door to check, an
     * answer `{ captcha }` or a Tencent callback `{ ticket, randstr }` (the
     * short way: create + this request, no verify); nothing gives up. A
     * refused one asks again (`refused: true`, the level read anew), up to
     * MAX_CHALLENGES times. With `{ level }` the challenge comes first, with
     * no probe: for a scene that always asks, two requests in all.
     */
    async run(scene, call, obtainPass, options) {
      let level = options && options.level
      let denied = null
      // n: 0 the probe (none with a level given), then each challenge, three
      // at most before a refusal stands.
      for (let n = level ? 1 : 0; n <= 3; n++) {
        let proof
        if (n) {
          if (!level) level = (await guard.status(scene)).level
          const need = { level: level === 'tencent' ? 'tencent' : 'image', scene }
          if (n > 1) need.refused = true
          proof = await obtainPass(need)
          if (!proofHeaders(proof)) throw denied || new GatehouseError('challenge-cancelled', 'no pass or answer')
        }
        try {
          return await call(proof)
        } catch (err) {
          if (!(err instanceof GatehouseError && err.status === 403)) throw err
          denied = err
          level = undefined
        }
      }
      throw denied
    },
    /** `run` for one request: request(method, path, { ...init, pass }), `pass` being what obtainPass gave. */
    request: (scene, method, path, init, obtainPass, options) =>
      guard.run(scene, (pass) => request(method, path, Object.assign({}, init, { pass })), obtainPass, options),
  }

  // -- SMS codes -------------------------------------------------------------
  const sms = {
    /** POST /sms/send (a door of the scene's guard: the pass when its level asks): { resendAfter, expiresIn }. */
    send: (scene, mobile, pass) => request('POST', '/sms/send', { body: { scene, mobile }, pass }),
    /** POST /sms/verify: { passToken, passExpired }, a pass of kind sms. */
    verify: (scene, mobile, code) => request('POST', '/sms/verify', { body: { scene, mobile, code: String(code).trim() } }),
    /** A "获取验证码" button's state and rules, for the components (see sms.mjs). */
    flow: (scene, handlers) => smsFlow({ sms, guard, clock }, scene, handlers || {}),
  }

  // -- WeChat session --------------------------------------------------------
  /** wx.login or wx.checkSession, as a promise. */
  const call = (name) =>
    new Promise((resolve, reject) => {
      if (!options.wx) throw new GatehouseError('wx-unavailable', 'createClient needs the wx (or uni) object for WeChat login')
      options.wx[name]({ success: resolve, fail: reject })
    })
  const keep = async (res) => {
    await storage.set(tokenKey, { token: res.token, tokenExpired: res.tokenExpired })
    return res
  }
  const forget = () => storage.remove(tokenKey)

  let loggingIn = null
  const session = {
    /** wx.login → POST /wx/login; `extra` may carry encryptedData, iv, rawData, signature, single. */
    async login(extra = {}) {
      const { code } = await call('login')
      return keep(await request('POST', '/wx/login', { body: Object.assign({ code }, extra) }))
    },
    /** The stored token while it lives and wx.checkSession passes, else a new login's. */
    async token() {
      const saved = await storage.get(tokenKey)
      if (saved && saved.token && saved.tokenExpired > clock.now()) {
        try {
          await call('checkSession')
          return saved.token
        } catch (expired) {
          // WeChat's session_key expired: log in again
        }
      }
      // Requests fired together share one login.
      if (!loggingIn) {
        const done = () => (loggingIn = null)
        loggingIn = session.login()
        loggingIn.then(done, done)
      }
      return (await loggingIn).token
    },
    /**
     * A request with the session's bearer token; when the session turns out
     * to be gone, logs in again and retries once.
     */
    async request(method, path, init = {}) {
      const token = await session.token()
      try {
        return await request(method, path, Object.assign({}, init, { token }))
      } catch (err) {
        if (!(await sessionLost(err, token))) throw err
        await forget()
        return request(method, path, Object.assign({}, init, { token: await session.token() }))
      }
    },
    get: () => session.request('GET', '/wx/session'),
    /** POST /wx/phone with the code of <button open-type="getPhoneNumber">. */
    phone: (code) => session.request('POST', '/wx/phone', { body: { code } }),
    /** POST /wx/session/refresh: a new token, the old one ended. */
    async refresh() {
      return keep(await session.request('POST', '/wx/session/refresh'))
    },
    /** DELETE /wx/session; the stored token is forgotten even if the server had ended it. */
    logout: () => endSession('/wx/session'),
    /** DELETE /wx/sessions: ends every session of this user. */
    logoutEverywhere: () => endSession('/wx/sessions'),
  }
  /**
   * Whether `err` means the session of `token` is gone: the server said
   * session-invalid/-expired, or API Gateway refused a route behind the
   * authorizer (a bare 401/403, which says nothing of why) and
   * GET /wx/session confirms the token is dead.
   */
  async function sessionLost(err, token) {
    if (!(err instanceof GatehouseError)) return false
    if (SESSION_LOST.includes(err.errCode)) return true
    if (!/^http-40[13]$/.test(err.errCode)) return false
    try {
      await request('GET', '/wx/session', { token })
      return false
    } catch (probe) {
      return SESSION_LOST.includes(probe.errCode)
    }
  }
  async function endSession(path) {
    const saved = await storage.get(tokenKey)
    await forget()
    if (!saved || !saved.token) return
    try {
      await request('DELETE', path, { token: saved.token })
    } catch (err) {
      if (!SESSION_LOST.includes(err.errCode)) throw err
    }
  }

  // -- Tencent captcha tickets -----------------------------------------------
  const handedOn = []
  const ticket = {
    /** POST /ticket/verify (randstr from web and app; none from the mini-program). */
    verify: ({ ticket: t, randstr }, { scene } = {}) =>
      request('POST', '/ticket/verify', { body: clean({ ticket: t, randstr, scene }) }),
    // A disaster-recovery ticket (trerror_/terror_, with errorCode) goes to
    // the server as well: the scene's tencent.disasterTicket policy decides
    // (ticket-rejected with captchaCode 21, or a pass marked degraded).
    /** The web/app TencentCaptcha callback result → verify; null when the user closed it. */
    fromWeb: async (res, opts) => (res && res.ret === 0 ? ticket.verify(res, opts) : null),
    /**
     * The captcha mini-program's result from App.onShow(options), once: clears
     * referrerInfo.extraData and never hands the same ticket on twice.
     */
    take(showOptions) {
      const ref = showOptions && showOptions.referrerInfo
      if (!ref || ref.appId !== TENCENT_CAPTCHA_MINIPROGRAM || !ref.extraData) return null
      const result = ref.extraData
      ref.extraData = null
      if (result.ret !== 0 || !result.ticket || handedOn.includes(result.ticket)) return null
      handedOn.push(result.ticket)
      if (handedOn.length > 32) handedOn.shift()
      return { ticket: result.ticket }
    },
    /** take(showOptions) then verify; null when there is nothing new. */
    async fromShow(showOptions, opts) {
      const taken = ticket.take(showOptions)
      return taken ? ticket.verify(taken, opts) : null
    },
  }

  return { request, deviceId, captcha, guard, sms, wx: session, ticket }
}

function queryString(query) {
  let text = ''
  for (const key in query) {
    const v = query[key]
    if (v !== undefined && v !== null) text += `${text ? '&' : '?'}${encodeURIComponent(key)}=${encodeURIComponent(v)}`
  }
  return text
}

function clean(object) {
  const kept = {}
  for (const key in object) {
    const v = object[key]
    if (v !== undefined && v !== null && v !== '') kept[key] = v
  }
  return kept
}

function retryAfter(value, now) {
  if (value === undefined || value === null || value === '') return undefined
  const seconds = Number(value)
  if (isFinite(seconds)) return seconds
  const at = Date.parse(value)
  return isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000))
}

/**
 * 16 bytes from the platform's CSPRNG: crypto.getRandomValues (browsers,
 * Node, newer base libraries) or wx.getRandomValues (WeChat). Never
 * Math.random: without either, the device id has to be given.
 */
async function randomBytes(wx) {
  if (typeof crypto !== 'undefined' && crypto && typeof crypto.getRandomValues === 'function') {
    return crypto.getRandomValues(new Uint8Array(16))
  }
  if (wx && typeof wx.getRandomValues === 'function') {
    return new Promise((resolve, reject) =>
      wx.getRandomValues({
        length: 16,
        success: (res) => resolve(new Uint8Array(res.randomValues)),
        fail: (err) => reject(new GatehouseError('random-unavailable', `wx.getRandomValues failed: ${err && err.errMsg}`)),
      }),
    )
  }
  throw new GatehouseError('random-unavailable', 'no CSPRNG here (crypto.getRandomValues, wx.getRandomValues): give createClient a deviceId')
}

function hex(bytes) {
  return Array.from(bytes, (b) => (b + 256).toString(16).slice(1)).join('')
}
