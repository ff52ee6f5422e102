// The page the browser test loads: a small `uni` over fetch and
// localStorage, uni-app's built-in components (view, text, image, input) as
// plain HTML, and one of the two components mounted with Vue 3 on a
// gatehouse-client the app provides. Query: api, device, scene, component
// (captcha | popup), locale, strings (JSON), lifetime, handOff, provide (0:
// no client provided).

import { createApp, defineComponent, h, nextTick, ref, watch } from 'vue'
import { createClient, uniStorage, uniTransport } from 'gatehouse-client'
import GatehouseCaptcha from '/uni_modules/gatehouse-captcha/components/gatehouse-captcha/gatehouse-captcha.vue'
import GatehousePopupCaptcha from '/uni_modules/gatehouse-captcha/components/gatehouse-popup-captcha/gatehouse-popup-captcha.vue'

const params = new URLSearchParams(location.search)
const record = (window.harness = {
  toasts: [],
  requests: [],
  verified: [],
  failed: [],
  expired: [],
  confirmed: [],
  answers: [],
  closed: 0,
  model: [],
  /** Paths whose answer the page has received and handed to the client, in order. */
  answered: [],
})

// ---- uni, as far as the components and the client use it ----
window.uni = {
  request({ url, method = 'GET', header = {}, data, success, fail }) {
    record.requests.push({ url, method })
    fetch(url, { method, headers: header, body: data === undefined ? undefined : JSON.stringify(data) })
      .then(async (res) => {
        const text = await res.text()
        let body = text
        try {
          body = JSON.parse(text)
        } catch {}
        const headers = {}
        res.headers.forEach((value, name) => (headers[name] = value))
        success({ statusCode: res.status, header: headers, data: body, errMsg: 'request:ok' })
        record.answered.push(new URL(url).pathname)
      })
      .catch((err) => fail({ errMsg: `request:fail ${err.message}` }))
  },
  showToast: (options) => void record.toasts.push(options.title),
  getLocale: () => params.get('locale') || 'zh-Hans',
  getSystemInfoSync: () => ({ deviceId: params.get('device') }),
  getStorageSync: (key) => {
    const text = localStorage.getItem(key)
    return text === null ? '' : JSON.parse(text)
  },
  setStorageSync: (key, value) => localStorage.setItem(key, JSON.stringify(value)),
  removeStorageSync: (key) => localStorage.removeItem(key),
}

// ---- uni-app's built-in components ----
const View = defineComponent({ name: 'view', setup: (_, { slots }) => () => h('div', slots.default && slots.default()) })
const Text = defineComponent({ name: 'text', setup: (_, { slots }) => () => h('span', slots.default && slots.default()) })
const Image = defineComponent({
  name: 'image',
  props: { src: String, mode: String },
  setup: (props) => () => h('img', { src: props.src || undefined }),
})
const Input = defineComponent({
  name: 'input',
  props: { value: String, focus: Boolean, maxlength: Number, placeholder: String, type: String },
  emits: ['input', 'blur', 'confirm'],
  setup(props, { emit }) {
    const el = ref(null)
    const focusIt = () => props.focus && nextTick(() => el.value && el.value.focus())
    watch(() => props.focus, focusIt)
    return () =>
      h('input', {
        ref: (node) => {
          if (node && !el.value) {
            el.value = node
            focusIt()
          }
        },
        value: props.value,
        type: 'text',
        placeholder: props.placeholder,
        maxlength: props.maxlength > 0 ? props.maxlength : undefined,
        'data-focus': String(props.focus),
        onInput: (e) => emit('input', { detail: { value: e.target.value } }),
        onBlur: () => emit('blur', { detail: {} }),
        onKeydown: (e) => e.key === 'Enter' && emit('confirm', { detail: { value: e.target.value } }),
      })
  },
})
export const BUILT_INS = [View, Text, Image, Input]

const client = createClient({
  baseUrl: params.get('api'),
  transport: uniTransport(window.uni),
  storage: uniStorage(window.uni),
  deviceId: params.get('device'),
  locale: params.get('locale') || undefined,
})
window.gatehouseClient = client

const Harness = defineComponent({
  setup() {
    const answer = ref('')
    const popup = ref(null)
    const captcha = ref(null)
    window.captchaRef = captcha
    const shared = {
      scene: params.get('scene') || 'login',
      strings: params.get('strings') ? JSON.parse(params.get('strings')) : null,
      lifetime: Number(params.get('lifetime')) || undefined,
      modelValue: answer.value,
      'onUpdate:modelValue': (value) => {
        answer.value = value
        record.model.push(value)
      },
      onExpired: (event) => record.expired.push(event.kind),
    }
    return () =>
      params.get('component') === 'popup'
        ? h('div', [
            h('button', { id: 'open', onClick: () => popup.value.open() }, 'open'),
            h(GatehousePopupCaptcha, {
              ...shared,
              ref: popup,
              modelValue: answer.value,
              title: params.get('title') || undefined,
              handOff: params.has('handOff'),
              onConfirm: (result) => record.confirmed.push(result),
              onAnswer: (handed) => record.answers.push(handed),
              onClose: () => record.closed++,
            }),
            h('p', { id: 'model' }, answer.value),
          ])
        : h('div', [
            h(GatehouseCaptcha, {
              ...shared,
              ref: captcha,
              modelValue: answer.value,
              focus: true,
              onVerified: (result) => record.verified.push(result),
              onFail: (err) => record.failed.push({ errCode: err.errCode, errMsg: err.errMsg }),
            }),
            h('p', { id: 'model' }, answer.value),
          ])
  },
})

const app = createApp(Harness)
for (const c of BUILT_INS) app.component(c.name, c)
app.component('gatehouse-captcha', GatehouseCaptcha)
if (params.get('provide') !== '0') app.provide('gatehouse', client)
app.config.errorHandler = (err) => {
  record.errors = (record.errors || []).concat(String(err && err.message))
}
app.mount('#app')
record.ready = true
