// The page the component tests load: one of the components mounted with
// Vue 3 (over builtins.js: `uni` and uni-app's built-in components) on a
// gatehouse-client the app provides. Query: api, device, scene, component
// (captcha | popup | sms), locale, strings (JSON), lifetime, handOff,
// provide (0: no client provided), level (the popup's #guarded:
// guard.request's `level` up front).

import { createApp, defineComponent, h, ref } from 'vue'
import { createClient, uniStorage, uniTransport } from 'gatehouse-client'
import { BUILT_INS, record } from './builtins.js'
import GatehouseCaptcha from '/uni_modules/gatehouse-captcha/components/gatehouse-captcha/gatehouse-captcha.vue'
import GatehousePopupCaptcha from '/uni_modules/gatehouse-captcha/components/gatehouse-popup-captcha/gatehouse-popup-captcha.vue'
import GatehouseSmsCode from '/uni_modules/gatehouse-captcha/components/gatehouse-sms-code/gatehouse-sms-code.vue'

const params = new URLSearchParams(location.search)
Object.assign(record, {
  verified: [],
  failed: [],
  expired: [],
  confirmed: [],
  answers: [],
  asked: [],
  guarded: [],
  closed: 0,
  model: [],
  sent: [],
  needPass: [],
})

const client = createClient({
  baseUrl: params.get('api'),
  transport: uniTransport(window.uni),
  storage: uniStorage(window.uni),
  deviceId: params.get('device'),
  locale: params.get('locale') || undefined,
})
window.gatehouseClient = client

function guarded(popup) {
  const scene = params.get('scene') || 'login'
  const ask = (need) => (record.asked.push(need), popup.ask(need))
  const options = params.get('level') ? { level: params.get('level') } : undefined
  client.guard.request(scene, 'POST', '/demo/guarded', { body: {} }, ask, options).then(
    (res) => record.guarded.push({ guard: res.guard }),
    (err) => record.guarded.push({ status: err.status, errCode: err.errCode }),
  )
}

const Harness = defineComponent({
  setup() {
    const answer = ref('')
    const popup = ref(null)
    const captcha = ref(null)
    const sms = ref(null)
    const mobile = ref('')
    window.captchaRef = captcha
    window.smsRef = sms
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
    const smsCode = () =>
      h('div', [
        h(GatehouseSmsCode, {
          ...shared,
          ref: sms,
          modelValue: answer.value,
          mobile: mobile.value,
          'onUpdate:mobile': (value) => (mobile.value = value),
          onSent: (result) => record.sent.push(result),
          onVerified: (result) => record.verified.push(result),
          onFail: (err) => record.failed.push({ errCode: err.errCode, errMsg: err.errMsg }),
          onNeedPass: (need) => record.needPass.push(need),
        }),
        h('p', { id: 'model' }, answer.value),
        h('p', { id: 'mobile' }, mobile.value),
      ])
    return () =>
      params.get('component') === 'sms'
        ? smsCode()
        : params.get('component') === 'popup'
        ? h('div', [
            h('button', { id: 'open', onClick: () => popup.value.open() }, 'open'),
            // A business request behind the guard, the popup as its obtainPass.
            h('button', { id: 'guarded', onClick: () => guarded(popup.value) }, 'guarded'),
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
