// A small fake of the `uni` / `wx` object: request performs the call with
// fetch as the real ones do (statusCode, header, parsed data), login asks the
// dev server's WeChat emulator for a code, storage lives in a Map.

export function fakePlatform(server, { user = 'alice' } = {}) {
  const calls = { request: [], login: 0, checkSession: 0, toast: [] }
  const storage = new Map()
  const api = {
    calls,
    storage,
    /** What wx.checkSession answers. */
    sessionValid: true,
    /** Set to hand out this code instead of a fresh one from the emulator. */
    nextCode: null,
    request(options) {
      calls.request.push(options)
      const { url, method = 'GET', header = {}, data, success, fail, complete } = options
      fetch(url, { method, headers: header, body: data === undefined ? undefined : JSON.stringify(data) })
        .then(async (res) => {
          const text = await res.text()
          let body = text
          try {
            body = JSON.parse(text)
          } catch {}
          // Header names as a platform may hand them: capitalised.
          const headers = {}
          res.headers.forEach((value, name) => (headers[name.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase())] = value))
          const result = { statusCode: res.status, header: headers, data: body, errMsg: 'request:ok' }
          success && success(result)
          complete && complete(result)
        })
        .catch((err) => {
          const result = { errMsg: `request:fail ${err.message}` }
          fail && fail(result)
          complete && complete(result)
        })
      return { abort() {} }
    },
    login({ success, fail }) {
      calls.login++
      const code = api.nextCode
      api.nextCode = null
      ;(code ? Promise.resolve(code) : server.wxCode(user)).then((c) => success({ code: c, errMsg: 'login:ok' }), fail)
    },
    checkSession({ success, fail }) {
      calls.checkSession++
      queueMicrotask(() =>
        api.sessionValid ? success({ errMsg: 'checkSession:ok' }) : fail({ errMsg: 'checkSession:fail session time out' }),
      )
    },
    getStorageSync: (key) => (storage.has(key) ? structuredClone(storage.get(key)) : ''),
    setStorageSync: (key, value) => void storage.set(key, structuredClone(value)),
    removeStorageSync: (key) => void storage.delete(key),
    showToast: (options) => void calls.toast.push(options),
  }
  return api
}

/** A Web Storage over a Map (localStorage's interface). */
export function fakeWebStorage() {
  const items = new Map()
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
  }
}

/** The bytes of a data:image/png;base64 URL, and its width and height from IHDR. */
export function pngSize(dataUrl) {
  const prefix = 'data:image/png;base64,'
  if (!dataUrl.startsWith(prefix)) throw new Error(`not a PNG data URL: ${dataUrl.slice(0, 40)}`)
  const bytes = Buffer.from(dataUrl.slice(prefix.length), 'base64')
  const signature = bytes.subarray(0, 8).toString('hex')
  if (signature !== '89504e470d0a1a0a') throw new Error('not a PNG')
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) }
}
