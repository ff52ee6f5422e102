// <gatehouse-sms-code> in headless Chromium against the real dev server and
// its SMS emulator (page.js), whose inbox the tests read as a phone would:
// the send, the countdown on the button, the code, and the guard's captcha
// when the scene asks for a pass.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { harnessSuite } from './page.js'

const onSms = harnessSuite('sms')

let numbers = 0
/** A mainland number no other test of this run uses. */
const newMobile = () => `+86137${String(process.pid % 10000).padStart(4, '0')}${String(++numbers).padStart(4, '0')}`

const mobileInput = '.gatehouse-sms-code__mobile'
const codeInput = '.gatehouse-sms-code__code'
const sendButton = '.gatehouse-sms-code__send'

describe('gatehouse-sms-code', () => {
  it('sends a code, counts resendAfter down on the button, and verifies the code read from the inbox', () =>
    onSms({ scene: 'sms', locale: 'zh-CN' }, async ({ page, harness, api }) => {
      const send = page.locator(sendButton)
      assert.equal(await send.textContent(), '获取验证码')
      await send.click()
      await page.waitForFunction(() => window.harness.toasts.length === 1)
      assert.deepEqual((await harness()).toasts, ['请填写手机号'], 'no number, no request')
      assert.equal((await harness()).requests.length, 0)

      const mobile = newMobile()
      await page.locator(mobileInput).fill(mobile.slice(3))
      assert.equal(await page.locator('#mobile').textContent(), mobile.slice(3), 'v-model:mobile')
      await send.click()
      await page.waitForFunction(() => window.harness.sent.length === 1)
      const h = await harness()
      assert.deepEqual([h.sent[0].resendAfter, h.sent[0].expiresIn], [10, 300])
      assert.match(await send.textContent(), /^\d+ 秒后重新获取$/)
      assert.equal(await send.getAttribute('aria-disabled'), 'true')
      await send.click()
      assert.equal(h.requests.filter((r) => r.url.endsWith('/sms/send')).length, 1)

      const [message] = await api.smsInbox(mobile)
      const code = message.params[0]
      await page.locator(codeInput).fill(code === '000000' ? '000001' : '000000')
      await page.locator(codeInput).press('Enter')
      await page.waitForFunction(() => window.harness.failed.length === 1)
      assert.equal((await harness()).failed[0].errCode, 'sms-code-invalid')
      assert.equal(await page.locator('.gatehouse-sms-code__error').textContent(), '短信验证码错误或已失效')

      await page.locator(codeInput).fill(code)
      assert.equal(await page.locator('#model').textContent(), code, 'v-model')
      await page.locator(codeInput).press('Enter')
      await page.waitForFunction(() => window.harness.verified.length === 1)
      const [verified] = (await harness()).verified
      assert.equal(verified.mobile, mobile.slice(3))
      assert.ok(verified.passToken && verified.passExpired > Date.now())
      assert.equal(await page.locator('.gatehouse-sms-code__error').count(), 0, 'the error is gone')
      assert.equal((await harness()).errors, undefined)
    }))

  it('shows the captcha when the scene’s guard asks for a pass, and sends once it is solved', () =>
    onSms({ scene: 'phone', locale: 'en' }, async ({ page, harness, api, answer }) => {
      const mobile = newMobile()
      await page.locator(mobileInput).fill(mobile)
      await page.locator(sendButton).click()
      await page.locator('.gatehouse-popup-captcha').waitFor()
      await page.waitForFunction(() => document.querySelector('.gatehouse-popup-captcha img[src^="data:image/png"]'))
      await page.locator('.gatehouse-popup-captcha input').fill(await answer('phone'))
      await page.locator('.gatehouse-popup-captcha__btn.is-confirm').click()
      await page.waitForFunction(() => window.harness.sent.length === 1)
      assert.equal((await harness()).sent[0].resendAfter, 60)
      assert.match(await page.locator(sendButton).textContent(), /^Resend in \d+ s$/)
      const paths = (await harness()).requests.map((r) => new URL(r.url).pathname)
      assert.deepEqual(
        paths.filter((p) => p !== '/captcha/refresh'),
        ['/sms/send', '/guard/status', '/captcha/create', '/captcha/verify', '/sms/send'],
      )
      assert.equal((await api.smsInbox(mobile)).length, 1)
    }))

  it('closing the captcha gives the send up: nothing is sent and the button is free again', () =>
    onSms({ scene: 'phone', locale: 'en' }, async ({ page, harness, api }) => {
      const mobile = newMobile()
      await page.locator(mobileInput).fill(mobile)
      await page.locator(sendButton).click()
      await page.locator('.gatehouse-popup-captcha').waitFor()
      await page.locator('.gatehouse-popup-captcha__btn:not(.is-confirm)').click()
      await page.waitForFunction(() => window.harness.failed.length === 1)
      assert.equal((await harness()).failed[0].errCode, 'guard-captcha-required')
      assert.equal(await page.locator(sendButton).textContent(), 'Get code')
      assert.deepEqual(await api.smsInbox(mobile), [])
    }))
})
