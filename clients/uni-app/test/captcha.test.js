// <gatehouse-captcha> in headless Chromium against the real dev server
// (page.js): what it shows and does, and how it survives a bad network:
// superseded loads, one verify at a time, a wrong answer against any other
// failure, retryAfter, expiry, strings, accessibility, theming, and where
// its client comes from.

import assert from 'node:assert/strict'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'

import { answered, holdAnswers, onPath, pauseClock } from '../../test/chromium.js'
import { startOfRateWindow, until } from '../../js/test/clock.js'
import { CJK, harnessSuite, imageSrc, newImage, out, requestsTo } from './page.js'

const onCaptcha = harnessSuite('captcha')

const wrongFor = (right) => (right === 'zzzz' ? 'yyyy' : 'zzzz')
const message = (page) => page.locator('.gatehouse-captcha__error').textContent()

describe('gatehouse-captcha', () => {
  it('shows an image, refreshes it on click, answers a wrong answer with the error and a new image, and verifies the right one', () =>
    onCaptcha({ scene: 'login', locale: 'zh-CN' }, async ({ page, harness, answer }) => {
      await newImage(page, null)
      const first = await imageSrc(page)
      const input = page.locator('input')
      assert.equal(await input.getAttribute('data-focus'), 'true', 'the focus prop reaches the input')
      assert.equal(await input.getAttribute('maxlength'), '32', 'no four-character limit')

      // A click on the image: a new image and a new stored answer.
      await input.fill('abc')
      await page.locator('img').click()
      await newImage(page, first)
      const second = await imageSrc(page)
      assert.equal(await input.inputValue(), '', 'the click cleared the answer')
      const paths = (await harness()).requests.map((r) => `${r.method} ${new URL(r.url).pathname}`)
      assert.deepEqual(paths, ['POST /captcha/create', 'POST /captcha/refresh'])

      // A wrong answer: the error shows, the input is cleared, and a new image comes.
      const right = await answer('login')
      await input.fill(wrongFor(right))
      assert.equal(await page.locator('#model').textContent(), wrongFor(right), 'v-model')
      await input.press('Enter')
      await newImage(page, second)
      assert.match(await message(page), CJK, 'uni-captcha-verify-fail, in Chinese with locale zh-CN')
      let h = await harness()
      assert.deepEqual(h.failed.map((f) => f.errCode), ['uni-captcha-verify-fail'])
      assert.ok(h.toasts.includes(h.failed[0].errMsg), 'and a toast')
      assert.equal(await input.inputValue(), '')

      // The right answer (from the test hook) verifies.
      await input.fill(await answer('login'))
      await input.press('Enter')
      await page.waitForFunction(() => window.harness.verified.length === 1)
      h = await harness()
      assert.equal(h.verified[0].errCode, 0)
      assert.equal(await page.locator('.gatehouse-captcha__error').count(), 0, 'the error is gone')
      assert.deepEqual(h.errors, undefined)
      mkdirSync(out, { recursive: true })
      await page.screenshot({ path: join(out, 'gatehouse-captcha.png') })
    }))

  it('takes six-character and math answers, in English with locale en', async () => {
    for (const scene of ['long', 'math']) {
      await onCaptcha({ scene, locale: 'en' }, async ({ page, harness, answer }) => {
        await newImage(page, null)
        const first = await imageSrc(page)
        const input = page.locator('input')
        await input.fill('wrong!')
        await input.press('Enter')
        await page.locator('.gatehouse-captcha__error').waitFor()
        assert.doesNotMatch(await message(page), CJK)
        // The wrong answer spent the captcha: the answer to read is the new image's.
        await newImage(page, first)
        const right = await answer(scene)
        if (scene === 'long') assert.equal(right.length, 6)
        else assert.match(right, /^-?\d+$/)
        await input.fill(right)
        assert.equal(await input.inputValue(), right, 'nothing cut the answer short')
        await input.press('Enter')
        await page.waitForFunction(() => window.harness.verified.length === 1)
        assert.equal((await harness()).verified[0].errCode, 0)
      })
    }
  })

  it('two quick taps: the first image, answered last, is dropped for the second', async () => {
    let held
    await onCaptcha(
      { scene: 'login' },
      async ({ page, answer }) => {
        await newImage(page, null)
        await page.locator('img').click()
        await page.locator('img').click()
        await until(() => answered(held) === 2, 'both refreshes on the server')
        const [older, newer] = held
        newer.release()
        await page.waitForFunction((src) => document.querySelector('img').getAttribute('src') === src, newer.body.captchaBase64)
        older.release()
        // The older answer arrives and is dropped: the newer image stays, and it is the one the server holds.
        await page.waitForFunction(() => window.harness.answered.filter((p) => p === '/captcha/refresh').length === 2)
        await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)))
        assert.equal(await imageSrc(page), newer.body.captchaBase64)
        await page.locator('input').fill(await answer('login'))
        await page.locator('input').press('Enter')
        await page.waitForFunction(() => window.harness.verified.length === 1)
      },
      { before: async (context) => (held = await holdAnswers(context, '/captcha/refresh')) },
    )
  })

  it('one verify at a time: Enter twice while the first is on its way sends one', async () => {
    let held
    await onCaptcha(
      { scene: 'login' },
      async ({ page, harness, answer }) => {
        await newImage(page, null)
        await page.locator('input').fill(await answer('login'))
        await page.locator('input').press('Enter')
        await page.locator('input').press('Enter')
        await until(() => answered(held) === 1, 'the verify on the server')
        held[0].release()
        await page.waitForFunction(() => window.harness.verified.length === 1)
        const h = await harness()
        assert.equal(requestsTo(h, '/captcha/verify'), 1)
        assert.equal(h.verified.length, 1)
      },
      { before: async (context) => (held = await holdAnswers(context, '/captcha/verify')) },
    )
  })

  it('a 429 keeps the answer and the image, counts retryAfter down, and sends nothing until it is over', () =>
    onCaptcha(
      { scene: 'throttled', locale: 'en' },
      async ({ page, harness, answer }) => {
        await newImage(page, null)
        const input = page.locator('input')
        // Both verifies in one window, the second's retryAfter far from over.
        await startOfRateWindow()
        // A wrong answer spends the window's one verify.
        const first = await imageSrc(page)
        await input.fill(wrongFor(await answer('throttled')))
        await input.press('Enter')
        await newImage(page, first)
        const image = await imageSrc(page)
        const right = await answer('throttled')
        await input.fill(right)
        await pauseClock(page)
        await input.press('Enter')
        await page.waitForFunction(() => window.harness.failed.length === 2)
        const h = await harness()
        assert.equal(h.failed[1].errCode, 'rate-limited')
        const seconds = Number((await message(page)).match(/try again in (\d+) s/)[1])
        assert.ok(seconds >= 1, `a countdown: ${await message(page)}`)
        assert.equal(await input.inputValue(), right, 'the answer stands')
        assert.equal(await imageSrc(page), image, 'the image stands')
        assert.equal(await page.locator('img').getAttribute('aria-disabled'), 'true')

        const sent = requestsTo(h, '/captcha/verify') + requestsTo(h, '/captcha/refresh')
        await input.press('Enter')
        await page.locator('img').click()
        await page.clock.runFor(1000)
        assert.match(await message(page), new RegExp(`try again in ${seconds - 1} s`))
        let now = await harness()
        assert.equal(requestsTo(now, '/captcha/verify') + requestsTo(now, '/captcha/refresh'), sent, 'nothing sent while waiting')

        await page.clock.runFor(seconds * 1000)
        assert.equal(await page.locator('.gatehouse-captcha__error').count(), 0, 'the wait is over')
        await input.press('Enter')
        await page.waitForFunction((n) => window.harness.requests.filter((r) => r.url.endsWith('/captcha/verify')).length > n, requestsTo(now, '/captcha/verify'))
      },
      { clock: true },
    ))

  it('no network, then a 503: the answer, the image and the captcha stand, and the message says why', async () => {
    let failWith = 'abort'
    await onCaptcha(
      { scene: 'login' },
      async ({ page, harness, answer }) => {
        await newImage(page, null)
        const image = await imageSrc(page)
        const input = page.locator('input')
        const right = await answer('login')
        await input.fill(right)
        await input.press('Enter')
        await page.waitForFunction(() => window.harness.failed.length === 1)
        assert.equal(await message(page), '网络不给力，请稍后再试')
        assert.equal(await input.inputValue(), right)
        assert.equal(await imageSrc(page), image)

        failWith = '503'
        await input.press('Enter')
        await page.waitForFunction(() => window.harness.failed.length === 2)
        assert.equal(await message(page), '存储暂不可用')
        assert.equal(await input.inputValue(), right)
        assert.equal(await imageSrc(page), image)
        assert.deepEqual((await harness()).failed.map((f) => f.errCode), ['network-error', 'store-unavailable'])

        failWith = null
        await input.press('Enter')
        await page.waitForFunction(() => window.harness.verified.length === 1)
      },
      {
        before: (context) =>
          onPath(context, '/captcha/verify', (route) => {
            if (failWith === 'abort') return route.abort('internetdisconnected')
            if (failWith === '503') {
              return route.fulfill({
                status: 503,
                contentType: 'application/json',
                headers: { 'access-control-allow-origin': '*' },
                body: JSON.stringify({ errCode: 'store-unavailable', errMsg: '存储暂不可用' }),
              })
            }
            return route.continue()
          }),
      },
    )
  })

  it('renews the image by itself 10 s before the captcha expires, and says when a pass went unused', async () => {
    let created
    await onCaptcha(
      { scene: 'demo', lifetime: '60', locale: 'en' },
      async ({ page, harness, answer }) => {
        // The clock stops before the first image comes: its lifetime counts from a known time.
        await pauseClock(page)
        await until(() => answered(created) === 1, 'the create on the server')
        created[0].release()
        await newImage(page, null)
        const first = await imageSrc(page)
        const code = await answer('demo')
        await page.locator('input').fill('half-typed')
        await page.clock.runFor(49999)
        assert.deepEqual((await harness()).expired, [])
        await page.clock.runFor(1)
        assert.deepEqual((await harness()).expired, ['captcha'])
        await newImage(page, first)
        assert.notEqual(await answer('demo'), code)
        assert.equal(await page.locator('input').inputValue(), '', 'the answer to the old image is gone')

        await page.locator('input').fill(await answer('demo'))
        await page.locator('input').press('Enter')
        await page.waitForFunction(() => window.harness.verified.length === 1)
        const solved = await imageSrc(page)
        const left = await page.evaluate(() => window.harness.verified[0].passExpired - Date.now())
        await page.clock.runFor(left - 1)
        assert.deepEqual((await harness()).expired, ['captcha'])
        await page.clock.runFor(1)
        assert.deepEqual((await harness()).expired, ['captcha', 'pass'])
        assert.equal(await message(page), 'The check expired: please solve the new one')
        await newImage(page, solved)
      },
      { clock: true, before: async (context) => (created = await holdAnswers(context, '/captcha/create')) },
    )
  })

  it('every text comes from strings, over zh or en defaults by locale; the image and input are labelled', async () => {
    await onCaptcha({ scene: 'login' }, async ({ page }) => {
      assert.equal(await page.locator('input').getAttribute('placeholder'), '请输入验证码')
      assert.equal(await page.locator('img').getAttribute('aria-role'), 'button')
      assert.equal(await page.locator('img').getAttribute('aria-label'), '验证码图片，点击换一张')
      assert.equal(await page.locator('input').getAttribute('aria-label'), '验证码')
    })
    await onCaptcha({ scene: 'login', locale: 'en-US' }, async ({ page }) => {
      assert.equal(await page.locator('input').getAttribute('placeholder'), 'Enter the characters')
      assert.equal(await page.locator('img').getAttribute('aria-label'), 'Captcha image, tap for a new one')
      await page.locator('input').press('Enter')
      await page.waitForFunction(() => window.harness.toasts.length === 1)
      assert.deepEqual(await page.evaluate(() => window.harness.toasts), ['Please enter the captcha'])
    })
    const strings = { placeholder: '输入右图字符', imageLabel: '看不清？换一张', required: '还没填呢' }
    await onCaptcha({ scene: 'login', strings: JSON.stringify(strings) }, async ({ page }) => {
      assert.equal(await page.locator('input').getAttribute('placeholder'), strings.placeholder)
      assert.equal(await page.locator('img').getAttribute('aria-label'), strings.imageLabel)
      await page.locator('input').press('Enter')
      await page.waitForFunction(() => window.harness.toasts.length === 1)
      assert.deepEqual(await page.evaluate(() => window.harness.toasts), [strings.required])
    })
  })

  it('takes its colours and sizes from CSS variables', () =>
    onCaptcha({ scene: 'login' }, async ({ page }) => {
      const box = page.locator('.gatehouse-captcha__image-box')
      const style = () => box.evaluate((el) => [getComputedStyle(el).backgroundColor, getComputedStyle(el).height])
      assert.deepEqual(await style(), ['rgb(255, 250, 232)', '44px'])
      await page.evaluate(() => {
        document.body.style.setProperty('--gatehouse-captcha-image-background', 'rgb(1, 2, 3)')
        document.body.style.setProperty('--gatehouse-captcha-height', '60px')
      })
      assert.deepEqual(await style(), ['rgb(1, 2, 3)', '60px'])
    }))

  it('takes its client from provide/inject only, never a prop; Vue 2 is declared unsupported', async () => {
    await onCaptcha({ scene: 'login', provide: '0' }, async ({ harness }) => {
      const errors = (await harness()).errors || []
      assert.ok(errors.some((e) => e.includes("app.provide('gatehouse'")), errors.join('\n'))
    })
    await onCaptcha({ scene: 'login' }, async ({ page }) => {
      const props = await page.evaluate(() => Object.keys(window.captchaRef.value.$options.props))
      assert.ok(!props.includes('client'), props.join(', '))
    })
    const meta = JSON.parse(readFileSync(new URL('../uni_modules/gatehouse-captcha/package.json', import.meta.url), 'utf8'))
    const vue = meta.uni_modules.platforms.client['uni-app'].vue
    assert.deepEqual(vue, { vue2: 'x', vue3: '√' })
    const changelog = readFileSync(new URL('../uni_modules/gatehouse-captcha/changelog.md', import.meta.url), 'utf8')
    assert.match(changelog.split('\n')[0], new RegExp(`^## ${meta.version}（\\d{4}-\\d{2}-\\d{2}）$`), 'the newest entry is this version, dated')
  })
})
