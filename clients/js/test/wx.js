// A `wx` for tests in Node, as a mini-program's base library hands it to
// code: wx.request over Node's http (statusCode, header, data parsed as
// dataType 'json' does), wx.getRandomValues from node:crypto, the *StorageSync
// functions over a Map, and wx.login from the dev server's WeChat emulator.
// It is made outside any vm context, as the base library's functions are
// native to the code that calls them.

import { request as httpRequest } from 'node:http'
import { webcrypto } from 'node:crypto'

export function nodeWx(server, { user = 'alice', random = true } = {}) {
  const calls = { request: [], getRandomValues: 0, navigateToMiniProgram: [] }
  const storage = new Map()
  const wx = {
    calls,
    storage,
    /** Set to answer wx.request with this instead of sending it: { statusCode, header, data } or { errMsg } (a failure). */
    intercept: null,
    request(options) {
      calls.request.push(options)
      const { url, method = 'GET', header = {}, data, success, fail, complete } = options
      const done = (ok, result) => {
        ;(ok ? success : fail)?.(result)
        complete?.(result)
      }
      const planned = wx.intercept && wx.intercept(options)
      if (planned) {
        setImmediate(() => (planned.errMsg ? done(false, planned) : done(true, { errMsg: 'request:ok', ...planned })))
        return { abort() {} }
      }
      const req = httpRequest(url, { method, headers: header }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => (text += chunk))
        res.on('end', () => {
          let body = text
          try {
            body = JSON.parse(text)
          } catch {}
          done(true, { statusCode: res.statusCode, header: res.headers, data: body, errMsg: 'request:ok' })
        })
      })
      req.on('error', (err) => done(false, { errMsg: `request:fail ${err.message}` }))
      if (data !== undefined) req.write(typeof data === 'string' ? data : JSON.stringify(data))
      req.end()
      return { abort: () => req.destroy() }
    },
    getStorageSync: (key) => (storage.has(key) ? structuredClone(storage.get(key)) : ''),
    setStorageSync: (key, value) => void storage.set(key, structuredClone(value)),
    removeStorageSync: (key) => void storage.delete(key),
    login({ success, fail }) {
      server.wxCode(user).then((code) => success({ code, errMsg: 'login:ok' }), fail)
    },
    checkSession({ success }) {
      success({ errMsg: 'checkSession:ok' })
    },
    navigateToMiniProgram(options) {
      calls.navigateToMiniProgram.push(options)
      setImmediate(() => options.success?.({ errMsg: 'navigateToMiniProgram:ok' }))
    },
  }
  if (random) {
    wx.getRandomValues = ({ length, success }) => {
      calls.getRandomValues++
      setImmediate(() => success({ randomValues: webcrypto.getRandomValues(new Uint8Array(length)).buffer }))
    }
  }
  return wx
}
