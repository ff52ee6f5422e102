// What uni-app gives a page, as far as the components, the client and the
// docs' snippets use it, for a page in Chromium: a small \`uni\` over fetch
// and localStorage (window.uni) and uni-app's built-in components (view,
// text, image, input, button) as plain HTML. Every request and answer is
// recorded in \`record\` (window.harness).

import { defineComponent, h, nextTick, ref, watch } from 'vue'

const params = new URLSearchParams(location.search)
export const record = (window.harness = {
  toasts: [],
  requests: [],
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
const Button = defineComponent({ name: 'button', setup: (_, { slots }) => () => h('button', { type: 'button' }, slots.default && slots.default()) })
export const BUILT_INS = [View, Text, Image, Input, Button]

