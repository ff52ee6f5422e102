// <gatehouse-sms-code>: "sign in by phone" as a native WeChat custom
// component, for mini-programs not built with uni-app (after *Build npm*:
// "gatehouse-client/gatehouse-sms-code/index" in usingComponents). The
// same rules as the uni-app component, from the client's sms.flow: a
// number, a 获取验证码 button that counts down from the server's resendAfter
// (or a refusal's retryAfter), and the code.
//
// The send is a door of its scene's guard. When the scene's level asks for
// an image captcha, the component shows <gatehouse-captcha> and sends once
// it is solved (cancel gives the send up); for a Tencent captcha it emits
// needpass ({ level, scene }) and waits for givePass(passToken), or
// givePass(null) to give up. The client is the app's, getApp().gatehouse.
//
// Events: sent ({ resendAfter, expiresIn }), verified ({ mobile,
// passToken, passExpired }: send the pass, X-Gatehouse-Pass, to the door
// that signs the number in), error ({ errCode, errMsg, status, retryAfter
// }), needpass ({ level, scene }).

const textAndFlow = require('../gatehouse-captcha/behavior.js')

Component({
  behaviors: [textAndFlow],

  data: {
    mobile: '',
    code: '',
    sending: false,
    waiting: 0,
    buttonText: '',
    message: '',
    focusCode: false,
    captcha: false,
  },

  methods: {
    start() {
      const app = getApp()
      const client = app && app.gatehouse
      if (!client) {
        this.failed({
          errCode: 'gatehouse-missing',
          errMsg: 'gatehouse-sms-code: App({ gatehouse: createClient(…) }) first; the component uses getApp().gatehouse',
        })
        return
      }
      this.failure = null
      this.flow = client.sms.flow(this.data.scene, {
        onChange: () => this.show(),
        obtainPass: (need) => this.obtainPass(need),
      })
      this.show()
    },

    stop() {
      if (this.flow) this.flow.stop()
      this.flow = null
      this.givePass(null)
    },

    // The flow's state on screen: the button's text, and the error to show.
    show() {
      const text = this.data.text
      const { sending, waiting, error } = this.flow ? this.flow.state : { sending: false, waiting: 0, error: null }
      const err = this.failure || error
      let buttonText = text.send
      if (sending) buttonText = text.sending
      else if (waiting > 0) buttonText = text.resend.replace('{seconds}', waiting)
      let message = ''
      if (err) message = err.errCode === 'network-error' ? text.network : err.errMsg || err.message
      this.setData({ sending, waiting, buttonText, message })
    },

    // The pass the guard asks for: the image captcha here, a Tencent one by the page.
    obtainPass(need) {
      return new Promise((resolve) => {
        this.passWanted = resolve
        if (need.level === 'image') this.setData({ captcha: true })
        else this.triggerEvent('needpass', need)
      })
    },

    // Hands the send the pass it waits for (null: give up).
    givePass(passToken) {
      const resolve = this.passWanted
      this.passWanted = null
      if (this.data.captcha) this.setData({ captcha: false })
      if (resolve) resolve(passToken || null)
    },

    onCaptchaPass(event) {
      this.givePass(event.detail.passToken)
    },

    cancelCaptcha() {
      this.givePass(null)
    },

    onMobile(event) {
      this.setData({ mobile: event.detail.value })
    },

    onCode(event) {
      this.setData({ code: event.detail.value })
    },

    onBlur() {
      this.setData({ focusCode: false })
    },

    // Sends a code: resolves { resendAfter, expiresIn } and emits sent, or
    // shows why not and resolves null.
    async send() {
      const mobile = this.data.mobile.trim()
      if (!mobile) {
        this.setData({ message: this.data.text.mobileRequired })
        return null
      }
      if (!this.flow) return null
      this.failure = null
      const res = await this.flow.send(mobile)
      if (res) {
        this.setData({ focusCode: true })
        this.triggerEvent('sent', res)
      } else if (this.flow && this.flow.state.error) {
        this.failed(this.flow.state.error)
      }
      return res
    },

    // Checks the code: resolves { mobile, passToken, passExpired } and emits
    // verified, or shows the error and resolves null.
    async verify() {
      const mobile = this.data.mobile.trim()
      const code = this.data.code.trim()
      if (!mobile || !code) {
        this.setData({ message: mobile ? this.data.text.codeRequired : this.data.text.mobileRequired })
        return null
      }
      if (!this.flow) return null
      this.failure = null
      try {
        const res = Object.assign({ mobile }, await this.flow.verify(mobile, code))
        this.show()
        this.triggerEvent('verified', res)
        return res
      } catch (err) {
        this.failed(err)
        return null
      }
    },

    failed(err) {
      this.failure = err
      this.show()
      this.triggerEvent('error', {
        errCode: err.errCode,
        errMsg: err.errMsg || err.message,
        status: err.status || 0,
        retryAfter: err.retryAfter,
      })
    },
  },
})
