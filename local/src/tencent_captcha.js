/*
 * A stand-in for Tencent Cloud Captcha's web SDK (TJCaptcha.js), served by
 * gatehouse's Tencent emulator (GET /TJCaptcha.js, also /TCaptcha.js) for
 * local work. It has the real SDK's shape:
 *
 *   const captcha = new TencentCaptcha(appId, callback, options)
 *   captcha.show()        // a modal; solving it calls callback(result)
 *   captcha.destroy()     // closes it without a callback
 *   captcha.getTicket()   // { CaptchaAppId, ticket } of the last solve
 *
 * and the callback gets what the real one does:
 *   solved:  { ret: 0, ticket, randstr, appid, CaptchaAppId, bizState }
 *   closed:  { ret: 2, ticket: '', randstr: '', appid, CaptchaAppId, bizState }
 *   no SDK:  { ret: 0, ticket: 'trerror_1001_<appId>_<time>', randstr, errorCode: 1001, errorMessage }
 *            (the disaster-recovery ticket the real SDK hands out when it
 *            cannot reach Tencent; Tencent cannot verify it, so the
 *            scene's tencent.disasterTicket policy decides)
 *
 * The real captcha asks for a slider or a click; here one button solves
 * it, and the ticket comes from this emulator (POST /emulator/ticket), so
 * POST /ticket/verify checks it against the emulator for real: once,
 * within 5 minutes, with its own randstr. The emulator issues tickets of
 * its own CaptchaAppId, whatever app id the page names.
 */
;(function () {
  'use strict'
  var script = document.currentScript
  var base = script && script.src ? new URL(script.src).origin : ''

  function TencentCaptcha(appIdOrElement, appIdOrCallback, callbackOrOptions, maybeOptions) {
    if (!(this instanceof TencentCaptcha)) throw new TypeError("TencentCaptcha must be called with 'new'")
    // Like the real SDK: (appId, callback, options), or (element, appId, callback, options).
    var args = appIdOrElement && appIdOrElement.nodeType === 1
      ? [appIdOrCallback, callbackOrOptions, maybeOptions]
      : [appIdOrElement, appIdOrCallback, callbackOrOptions]
    if (typeof args[1] !== 'function') throw new TypeError('TencentCaptcha: the callback must be a function')
    this.appId = String(args[0])
    this.callback = args[1]
    this.options = args[2] || {}
    this.dialog = null
    this.last = null
    if (appIdOrElement && appIdOrElement.nodeType === 1) {
      var self = this
      appIdOrElement.addEventListener('click', function () { self.show() })
    }
  }

  TencentCaptcha.prototype.result = function (extra) {
    var result = { appid: this.appId, CaptchaAppId: this.appId, bizState: this.options.bizState }
    for (var key in extra) result[key] = extra[key]
    return result
  }

  TencentCaptcha.prototype.finish = function (result) {
    this.destroy()
    if (result.ticket) this.last = result
    this.callback(result)
  }

  TencentCaptcha.prototype.show = function () {
    if (this.dialog) return
    var self = this
    var zh = String(this.options.userLanguage || navigator.language || 'zh').toLowerCase().indexOf('zh') === 0
    var overlay = document.createElement('div')
    overlay.id = 'tcaptcha-stand-in'
    overlay.setAttribute('role', 'dialog')
    overlay.setAttribute('aria-modal', 'true')
    overlay.style.cssText = 'position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;' +
      'justify-content:center;z-index:2147483647;font:15px/1.5 system-ui,sans-serif'
    var box = document.createElement('div')
    box.style.cssText = 'background:#fff;color:#222;border-radius:8px;width:300px;padding:18px 20px;' +
      'box-shadow:0 8px 30px rgba(0,0,0,.3);position:relative'
    var title = document.createElement('div')
    title.style.cssText = 'font-weight:600;margin:0 18px 6px 0'
    title.textContent = zh ? '腾讯云验证码（本地替身）' : 'Tencent Captcha (local stand-in)'
    var note = document.createElement('p')
    note.style.cssText = 'margin:0 0 14px;color:#555;font-size:13px'
    note.textContent = zh
      ? '由 gatehouse 的腾讯云验证码模拟器签发票据。真正的验证码要求滑动或点选；这里点一下即可。'
      : "Tickets come from gatehouse's Tencent emulator. The real captcha asks for a slider or a click; here one button solves it."
    var verify = document.createElement('button')
    verify.id = 'tcaptcha-stand-in-verify'
    verify.type = 'button'
    verify.textContent = zh ? '验证' : 'Verify'
    verify.style.cssText = 'font:inherit;width:100%;padding:8px;border:0;border-radius:4px;background:#0052d9;color:#fff;cursor:pointer'
    var close = document.createElement('button')
    close.id = 'tcaptcha-stand-in-close'
    close.type = 'button'
    close.setAttribute('aria-label', zh ? '关闭' : 'Close')
    close.textContent = '×'
    close.style.cssText = 'position:absolute;top:6px;right:10px;border:0;background:none;font-size:20px;cursor:pointer;color:#888'
    box.appendChild(close)
    box.appendChild(title)
    box.appendChild(note)
    box.appendChild(verify)
    overlay.appendChild(box)
    document.body.appendChild(overlay)
    this.dialog = overlay

    close.addEventListener('click', function () {
      self.finish(self.result({ ret: 2, ticket: '', randstr: '' }))
    })
    verify.addEventListener('click', function () {
      verify.disabled = true
      fetch(base + '/emulator/ticket', { method: 'POST' })
        .then(function (res) {
          if (!res.ok) throw new Error('HTTP ' + res.status)
          return res.json()
        })
        .then(function (issued) {
          self.finish(self.result({ ret: 0, ticket: issued.ticket, randstr: issued.randstr }))
        })
        .catch(function (err) {
          self.finish(self.result({
            ret: 0,
            ticket: 'trerror_1001_' + self.appId + '_' + Math.floor(Date.now() / 1000),
            randstr: '@' + Math.random().toString(36).slice(2, 5),
            errorCode: 1001,
            errorMessage: 'stand-in: the Tencent emulator did not answer (' + err.message + ')',
          }))
        })
    })
    if (typeof this.options.ready === 'function') {
      this.options.ready({ sdkView: { width: box.offsetWidth, height: box.offsetHeight } })
    }
  }

  TencentCaptcha.prototype.destroy = function () {
    if (this.dialog && this.dialog.parentNode) this.dialog.parentNode.removeChild(this.dialog)
    this.dialog = null
  }

  TencentCaptcha.prototype.getTicket = function () {
    return this.last ? { CaptchaAppId: this.last.CaptchaAppId, ticket: this.last.ticket } : { CaptchaAppId: this.appId, ticket: '' }
  }

  window.TencentCaptcha = TencentCaptcha
})()
