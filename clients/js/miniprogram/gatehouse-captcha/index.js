// <gatehouse-captcha>: gatehouse's image captcha as a native WeChat custom
// component, for mini-programs not built with uni-app. It ships in the
// package's `miniprogram` directory, so after *Build npm* a page names it
// "gatehouse-client/gatehouse-captcha/index" in usingComponents.
//
// The client is the app's, getApp().gatehouse (a property is JSON and could
// not carry one). The rules are the client's captcha.flow, as in the uni-app
// components: a superseded image is dropped, one verify runs at a time, only
// a wrong answer clears the input and brings a new image, any other failure
// keeps both, shows why and waits out retryAfter, and the image renews
// itself before the captcha's lifetime ends.
//
// Events: pass (the verify result: passToken, passExpired), expired
// ({ kind: 'captcha' | 'pass' }), error ({ errCode, errMsg, status,
// retryAfter, wrongAnswer }); with hand-off, answer ({ captcha, deviceId,
// scene }) in place of a verify, for the caller's own request.
//
// The short way (the answer at the door, as with uni-captcha): ask(need) is
// guard.request's obtainPass as it stands. It resolves the next answer
// submitted (the answer event fires too), which the request carries to the
// door in X-Gatehouse-Captcha: the captcha's create and the request itself,
// no verify. When the door refused the last one (need.refused), the
// captcha is spent: a new image comes, with strings.refused.

const textAndFlow = require('./behavior.js')

Component({
  behaviors: [textAndFlow],

  properties: {
    // The scene's captcha lifetime (expiresDate) in seconds.
    lifetime: { type: Number, value: 180 },
    width: { type: Number, value: 0 },
    height: { type: Number, value: 0 },
    focus: { type: Boolean, value: false },
    // The confirm button; without it, the keyboard's confirm key or verify() submits.
    button: { type: Boolean, value: true },
    handOff: { type: Boolean, value: false },
  },

  data: {
    image: '',
    loading: false,
    verifying: false,
    waiting: 0,
    answer: '',
    message: '',
    focused: false,
  },

  observers: {
    focus(focus) {
      this.setData({ focused: focus })
    },
  },

  methods: {
    start() {
      const app = getApp()
      const client = app && app.gatehouse
      if (!client) {
        this.triggerEvent('error', {
          errCode: 'gatehouse-missing',
          errMsg: 'gatehouse-captcha: App({ gatehouse: createClient(…) }) first; the component uses getApp().gatehouse',
          status: 0,
          wrongAnswer: false,
        })
        return
      }
      const size = {}
      if (this.data.width) size.width = this.data.width
      if (this.data.height) size.height = this.data.height
      this.notice = ''
      this.flow = client.captcha.flow(this.data.scene, {
        size,
        lifetime: this.data.lifetime,
        onChange: () => this.show(),
        onPass: (result) => this.triggerEvent('pass', result),
        onExpired: (event) => this.expired(event),
        onError: (err, wrongAnswer) => this.failed(err, wrongAnswer),
      })
      this.flow.start()
    },

    // On detach: a pending ask() resolves null, the flow ends.
    stop() {
      if (this.asking) this.asking(null)
      if (this.flow) this.flow.stop()
      this.flow = null
    },

    // The flow's state on screen, with the message it calls for.
    show() {
      if (!this.flow) return
      const { image, loading, verifying, waiting, error } = this.flow.state
      const text = this.data.text
      let message = this.notice || ''
      if (waiting > 0) message = text.wait.replace('{seconds}', waiting)
      else if (error) message = error.errCode === 'network-error' ? text.network : error.errMsg || error.message
      this.setData({ image, loading, verifying, waiting, message })
    },

    // A tap on the image: a new image, the answer cleared, the input focused.
    refresh() {
      if (!this.flow || this.data.waiting > 0) return Promise.resolve()
      this.notice = ''
      this.setData({ answer: '', focused: true })
      return this.flow.refresh()
    },

    onInput(event) {
      this.setData({ answer: event.detail.value })
    },

    onBlur() {
      this.setData({ focused: false })
    },

    // The confirm button or key: verify, or with hand-off (or while ask()
    // waits) emit 'answer' and settle ask().
    submit() {
      if (!this.data.handOff && !this.asking) return this.verify()
      return this.answer().then((handed) => {
        if (handed) {
          this.triggerEvent('answer', handed)
          if (this.asking) this.asking(handed)
        }
        return handed
      })
    },

    // guard.request's obtainPass: resolves the next answer submitted, or
    // null when another ask() or the page's unload supersedes it.
    // need.refused: the door refused (and spent) the last answer.
    ask(need) {
      if (this.asking) this.asking(null)
      if (need && need.refused) {
        this.notice = this.data.text.refused
        this.setData({ answer: '', focused: true })
        if (this.flow) this.flow.refresh()
        this.show()
      }
      return new Promise((resolve) => {
        this.asking = (handed) => {
          this.asking = null
          resolve(handed)
        }
      })
    },

    // Resolves the verify result (and emits 'pass'), or null after showing
    // why; a second call while one runs gets the same promise.
    verify() {
      const answer = this.data.answer.trim()
      if (!this.required(answer) || !this.flow) return Promise.resolve(null)
      this.notice = ''
      return this.flow.verify(answer)
    },

    // The answer for the caller's own request: { captcha, deviceId, scene }, or null when empty.
    answer() {
      const answer = this.data.answer.trim()
      if (!this.required(answer) || !this.flow) return Promise.resolve(null)
      return this.flow.answer(answer)
    },

    required(answer) {
      if (answer) return true
      this.setData({ message: this.data.text.required, focused: true })
      return false
    },

    failed(err, wrongAnswer) {
      // The captcha is spent on a wrong answer; a new image is on its way.
      if (wrongAnswer) this.setData({ answer: '', focused: true })
      this.triggerEvent('error', {
        errCode: err.errCode,
        errMsg: err.errMsg || err.message,
        status: err.status || 0,
        retryAfter: err.retryAfter,
        wrongAnswer,
      })
    },

    expired(event) {
      if (event.kind === 'pass') this.notice = this.data.text.passExpired
      this.setData({ answer: '' })
      this.show()
      this.triggerEvent('expired', event)
    },
  },
})
