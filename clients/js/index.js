// gatehouse-client: the client side of gatehouse (image captchas, WeChat
// sessions, Tencent captcha tickets, the guard's passes), over uni.request,
// wx.request or fetch. No dependencies; see index.d.ts for the types.

/** The captcha mini-program whose jump result arrives in App.onShow. */
export const TENCENT_CAPTCHA_MINIPROGRAM = 'wx5a3a7366fd07e119'

/** Every failure: the server's errCode/errMsg, or a network error (status 0). */
export class GatehouseError extends Error {
  constructor(errCode, errMsg, status = 0, data = undefined, retryAfter = undefined) {
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
export function fetchTransport(fetchImpl = globalThis.fetch, { timeout = 10000 } = {}) {
  return async ({ method, url, headers, body }) => {
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), timeout)
    try {
      const res = await fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort.signal,
      })
      const text = await res.text()
      return { status: res.status, headers: (name) => res.headers.get(name), data: parseJson(text) }
    } catch (err) {
      throw networkError(abort.signal.aborted ? 'timeout' : err && err.message)
    } finally {
      clearTimeout(timer)
    }
  }
}

/** A transport over `uni.request` (uni-app, every platform). */
export function uniTransport(uni, options) {
  return requestTransport(uni, options)
}

/** A transport over `wx.request` (WeChat mini-programs). */
export function wxTransport(wx, options) {
  return requestTransport(wx, options)
}

function requestTransport(api, { timeout = 10000 } = {}) {
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

function headerValue(headers, name) {
  const lower = name.toLowerCase()
  for (const key in headers || {}) if (key.toLowerCase() === lower) return String(headers[key])
  return undefined
}

function parseJson(text) {
  try {
    return JSON.parse(text)
  } catch {
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
 * createClient({ baseUrl, transport, storage, locale, deviceId, wx, prefix })
 * - transport: fetchTransport() (the default), uniTransport(uni), wxTransport(wx)
 * - storage: uniStorage(uni), wxStorage(wx), webStorage(localStorage), memoryStorage() (the default)
 * - locale: 'en', 'zh-CN' … or a function returning one; sent as Accept-Language
 * - deviceId: a string or a (possibly async) function; by default a random id kept in storage
 * - wx: the `wx` or `uni` object whose login/checkSession the WeChat session uses
 */
export function createClient(options) {
  const baseUrl = String(options.baseUrl || '').replace(/\/+$/, '')
  const transport = options.transport || fetchTransport()
  const storage = options.storage || memoryStorage()
  const prefix = options.prefix || 'gatehouse:'
  const tokenKey = prefix + 'token'

  let storedId
  function deviceId() {
    const given = options.deviceId
    if (given) return Promise.resolve(typeof given === 'function' ? given() : given)
    storedId = storedId || (async () => {
      let id = await storage.get(prefix + 'deviceId')
      if (!id) await storage.set(prefix + 'deviceId', (id = randomId()))
      return id
    })()
    return storedId
  }

  /** One HTTP call; resolves the body on errCode 0, throws GatehouseError otherwise. */
  async function request(method, path, { body, query, headers = {}, token, pass } = {}) {
    const locale = typeof options.locale === 'function' ? options.locale() : options.locale
    const all = { 'X-Device-Id': await deviceId(), ...headers }
    if (body !== undefined) all['Content-Type'] = 'application/json'
    if (locale) all['Accept-Language'] = locale
    if (token) all.Authorization = `Bearer ${token}`
    if (pass) all['X-Gatehouse-Pass'] = pass
    const res = await transport({ method, url: baseUrl + path + queryString(query), headers: all, body })
    const data = res.data
    const errCode = data && typeof data === 'object' ? data.errCode : undefined
    if (res.status >= 200 && res.status < 300 && (errCode === 0 || errCode === undefined)) return data
    throw new GatehouseError(
      typeof errCode === 'string' && errCode ? errCode : `http-${res.status}`,
      (data && (data.errMsg || data.message)) || `HTTP ${res.status}`,
      res.status,
      data,
      retryAfter(res.headers('retry-after')),
    )
  }

  // -- image captchas --------------------------------------------------------
  const captcha = {
    create: (scene, size = {}) => request('POST', '/captcha/create', { body: { scene, ...size } }),
    refresh: (scene, size = {}) => request('POST', '/captcha/refresh', { body: { scene, ...size } }),
    /** Resolves { errCode: 0, passToken?, passExpired? } (the pass once the guard is on). */
    verify: (scene, answer) => request('POST', '/captcha/verify', { body: { scene, captcha: answer } }),
  }

  // -- the guard -------------------------------------------------------------
  const guard = {
    status: (scene) => request('GET', '/guard/status', { query: { scene } }),
    /**
     * Runs a business request; on a 403 asks the guard what is needed, has
     * `obtainPass({ level, scene })` get a pass (a passToken, or nothing to
     * give up) and retries once with it.
     */
    async run(scene, call, obtainPass) {
      try {
        return await call(undefined)
      } catch (err) {
        if (!(err instanceof GatehouseError) || err.status !== 403) throw err
        const { level } = await guard.status(scene)
        const passToken = await obtainPass({ level: level === 'tencent' ? 'tencent' : 'image', scene })
        if (!passToken) throw err
        return call(passToken)
      }
    },
    /** `run` for one request: request(method, path, { ...init, pass }). */
    request: (scene, method, path, init, obtainPass) =>
      guard.run(scene, (pass) => request(method, path, { ...init, pass }), obtainPass),
  }

  // -- WeChat session --------------------------------------------------------
  const wxApi = () => {
    if (!options.wx) throw new GatehouseError('wx-unavailable', 'createClient needs the wx (or uni) object for WeChat login')
    return options.wx
  }
  const call = (name, args = {}) =>
    new Promise((resolve, reject) => wxApi()[name]({ ...args, success: resolve, fail: reject }))
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
      return keep(await request('POST', '/wx/login', { body: { code, ...extra } }))
    },
    /** The stored token while it lives and wx.checkSession passes, else a new login's. */
    async token() {
      const saved = await storage.get(tokenKey)
      if (saved && saved.token && saved.tokenExpired > Date.now()) {
        try {
          await call('checkSession')
          return saved.token
        } catch {
          // WeChat's session_key expired: log in again
        }
      }
      // Requests fired together share one login.
      loggingIn = loggingIn || session.login().finally(() => (loggingIn = null))
      return (await loggingIn).token
    },
    /**
     * A request with the session's bearer token; when the session turns out
     * to be gone, logs in again and retries once.
     */
    async request(method, path, init = {}) {
      const token = await session.token()
      try {
        return await request(method, path, { ...init, token })
      } catch (err) {
        if (!(await sessionLost(err, token))) throw err
        await forget()
        return request(method, path, { ...init, token: await session.token() })
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
    if (err.errCode !== 'http-401' && err.errCode !== 'http-403') return false
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
    /** The web/app TencentCaptcha callback result → verify; null when the user closed it. */
    fromWeb(res, opts) {
      if (!res || res.ret !== 0) return Promise.resolve(null)
      // A disaster-recovery ticket (trerror_/terror_, with errorCode) goes to
      // the server as well: the scene's tencent.disasterTicket policy decides
      // (ticket-rejected with captchaCode 21, or a pass marked degraded).
      return ticket.verify(res, opts)
    },
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
    fromShow(showOptions, opts) {
      const taken = ticket.take(showOptions)
      return taken ? ticket.verify(taken, opts) : Promise.resolve(null)
    },
  }

  return { request, deviceId, captcha, guard, wx: session, ticket }
}

function queryString(query) {
  const pairs = Object.entries(query || {}).filter(([, v]) => v !== undefined && v !== null)
  return pairs.length ? '?' + pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&') : ''
}

function clean(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== null && v !== ''))
}

function retryAfter(value) {
  if (value === undefined || value === null || value === '') return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return seconds
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}

function randomId() {
  const bytes = new Uint8Array(16)
  const crypto = globalThis.crypto
  if (crypto && crypto.getRandomValues) crypto.getRandomValues(bytes)
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
