// <gatehouse-popup-captcha> in headless Chromium against the real dev
// server (page.js): open, confirm, one verify at a time, the mask, touch
// moves, strings and labels, theming, handing the answer to the caller, and
// ask() as guard.request's obtainPass (the short way).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { answered, holdAnswers } from '../../test/chromium.js'
import { until } from '../../js/test/clock.js'
import { harnessSuite, imageSrc, newImage, requestsTo } from './page.js'

const onPopup = harnessSuite('popup')

const dialog = '.gatehouse-popup-captcha'
const confirmButton = '.gatehouse-popup-captcha__btn.is-confirm'

describe('gatehouse-popup-captcha', () => {
  it('open() shows the captcha; confirm needs an answer, keeps the dialog on a wrong one, and emits confirm with the result', () =>
    onPopup({ scene: 'login', title: 'Captcha' }, async ({ page, harness, answer }) => {
      assert.equal(await page.locator(dialog).count(), 0, 'closed at first')
      await page.locator('#open').click()
      await page.locator(dialog).waitFor()
      await newImage(page, null)
      assert.equal(await page.locator('.gatehouse-popup-captcha__title').textContent(), 'Captcha')

      const confirm = page.locator(confirmButton)
      await confirm.click()
      await page.waitForFunction(() => window.harness.toasts.length === 1)
      assert.deepEqual((await harness()).toasts, ['请填写验证码'])

      const input = page.locator('input')
      const shown = await imageSrc(page)
      const right = await answer('login')
      await input.fill(right === 'zzzzz' ? 'yyyyy' : 'zzzzz')
      await confirm.click()
      await newImage(page, shown)
      await page.locator('.gatehouse-captcha__error').waitFor()
      assert.equal(await page.locator(dialog).count(), 1, 'still open')
      assert.equal((await harness()).confirmed.length, 0)

      await input.fill(await answer('login'))
      await confirm.click()
      await page.locator(dialog).waitFor({ state: 'detached' })
      const h = await harness()
      assert.equal(h.confirmed.length, 1)
      assert.equal(h.confirmed[0].errCode, 0)
      assert.equal(h.errors, undefined)

      // Opened again: a fresh captcha and an empty answer.
      await page.locator('#open').click()
      await newImage(page, null)
      assert.equal(await page.locator('input').inputValue(), '')
      assert.equal(await page.locator('#model').textContent(), '')
    }))

  it('confirm tapped twice while the verify is on its way sends one verify and confirms once', async () => {
    let held
    await onPopup(
      { scene: 'login' },
      async ({ page, harness, answer }) => {
        await page.locator('#open').click()
        await newImage(page, null)
        await page.locator('input').fill(await answer('login'))
        await page.locator(confirmButton).click()
        assert.equal(await page.locator(confirmButton).getAttribute('aria-disabled'), 'true', 'busy')
        await page.locator(confirmButton).click()
        await until(() => answered(held) === 1, 'the verify on the server')
        held[0].release()
        await page.locator(dialog).waitFor({ state: 'detached' })
        const h = await harness()
        assert.equal(requestsTo(h, '/captcha/verify'), 1)
        assert.equal(h.confirmed.length, 1)
      },
      { before: async (context) => (held = await holdAnswers(context, '/captcha/verify')) },
    )
  })

  it('a tap on the mask closes it, a tap inside does not; touch moves stop at the mask', () =>
    onPopup({ scene: 'login' }, async ({ page, harness }) => {
      await page.locator('#open').click()
      await newImage(page, null)
      await page.locator('.gatehouse-popup-captcha__title').click()
      assert.equal(await page.locator(dialog).count(), 1, 'a tap inside keeps it open')

      const moved = await page.locator('.gatehouse-popup-captcha__mask').evaluate((mask) => {
        let reached = false
        document.addEventListener('touchmove', () => (reached = true))
        const event = new Event('touchmove', { bubbles: true, cancelable: true })
        mask.dispatchEvent(event)
        return { prevented: event.defaultPrevented, reached }
      })
      assert.deepEqual(moved, { prevented: true, reached: false })

      await page.mouse.click(5, 5)
      await page.locator(dialog).waitFor({ state: 'detached' })
      assert.equal((await harness()).closed, 1)
    }))

  it('texts from strings over the locale’s defaults, labelled buttons, and CSS variables', () =>
    onPopup({ scene: 'login', locale: 'en', strings: JSON.stringify({ cancel: 'Not now' }) }, async ({ page }) => {
      await page.locator('#open').click()
      await newImage(page, null)
      assert.equal(await page.locator('.gatehouse-popup-captcha__title').textContent(), 'Enter the captcha')
      const buttons = await page.locator('.gatehouse-popup-captcha__btn').evaluateAll((els) =>
        els.map((el) => [el.textContent.trim(), el.getAttribute('aria-role'), el.getAttribute('aria-label')]),
      )
      assert.deepEqual(buttons, [
        ['Not now', 'button', 'Not now'],
        ['OK', 'button', 'OK'],
      ])
      assert.equal(await page.locator(dialog).getAttribute('aria-role'), 'dialog')
      const accent = () => page.locator(confirmButton).evaluate((el) => getComputedStyle(el).color)
      assert.equal(await accent(), 'rgb(0, 122, 255)')
      await page.evaluate(() => document.body.style.setProperty('--gatehouse-popup-accent', 'rgb(7, 8, 9)'))
      assert.equal(await accent(), 'rgb(7, 8, 9)')
    }))

  it('with hand-off, confirm verifies nothing and hands { captcha, deviceId, scene } on; the server takes that answer', () =>
    onPopup({ scene: 'demo', handOff: '' }, async ({ page, api, harness, answer, device }) => {
      await page.locator('#open').click()
      await newImage(page, null)
      const right = await answer('demo')
      await page.locator('input').fill(` ${right} `)
      await page.locator(confirmButton).click()
      await page.locator(dialog).waitFor({ state: 'detached' })
      const h = await harness()
      assert.deepEqual(h.answers, [{ captcha: right, deviceId: device, scene: 'demo' }])
      assert.equal(requestsTo(h, '/captcha/verify'), 0)
      assert.equal(h.confirmed.length, 0)

      // What the caller does with it: the business request carries it, and the door checks it.
      const [handed] = h.answers
      const res = await fetch(api.url + '/demo/guarded', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-device-id': handed.deviceId, 'x-gatehouse-captcha': handed.captcha },
        body: '{}',
      })
      const guarded = await res.json()
      assert.equal(guarded.guard.passKind, 'captcha', JSON.stringify(guarded))
    }))

  it('ask() as guard.request’s obtainPass, with hand-off: create + the business request, the door checks the answer', () =>
    onPopup({ scene: 'demo', handOff: '', level: 'image' }, async ({ page, harness, answer }) => {
      await page.locator('#guarded').click()
      await page.locator(dialog).waitFor()
      await newImage(page, null)
      assert.equal(await page.locator('.gatehouse-popup-captcha__notice').count(), 0)
      await page.locator('input').fill(await answer('demo'))
      await page.locator(confirmButton).click()
      await page.waitForFunction(() => window.harness.guarded.length === 1)
      const h = await harness()
      assert.equal(h.guarded[0].guard.passKind, 'captcha', JSON.stringify(h.guarded))
      assert.deepEqual(h.asked, [{ level: 'image', scene: 'demo' }])
      const paths = h.requests.map((r) => new URL(r.url).pathname)
      assert.deepEqual(paths, ['/captcha/create', '/demo/guarded'])
    }))

  it('ask() after a wrong answer at the door: the dialog comes back with a new image and says so; closing it gives up', () =>
    onPopup({ scene: 'demo', handOff: '', locale: 'en' }, async ({ page, harness, answer }) => {
      await page.locator('#guarded').click()
      await page.locator(dialog).waitFor()
      await newImage(page, null)
      const shown = await imageSrc(page)
      const right = await answer('demo')
      await page.locator('input').fill(right === 'zzzz' ? 'yyyy' : 'zzzz')
      await page.locator(confirmButton).click()
      await page.locator('.gatehouse-popup-captcha__notice').waitFor()
      await newImage(page, shown)
      assert.equal(await page.locator('.gatehouse-popup-captcha__notice').textContent(), 'Not accepted: please solve the new one')
      assert.notEqual(await answer('demo'), undefined)
      await page.locator('.gatehouse-popup-captcha__btn').first().click()
      await page.waitForFunction(() => window.harness.guarded.length === 1)
      const h = await harness()
      assert.deepEqual(h.guarded, [{ status: 403, errCode: 'http-403' }])
      assert.deepEqual(h.asked.map((need) => !!need.refused), [false, true])
      assert.equal(requestsTo(h, '/captcha/verify'), 0)
    }))
})
