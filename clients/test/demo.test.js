// The dev server's demo page (local/src/demo.html) in headless Chromium,
// for what tests/e2e/browser.rs (the whole drive through every door) does
// not look at: the captcha image renews from the keyboard, every button is
// busy while its action runs, so a second click or submit starts nothing and
// leaves nothing hanging, and a configuration it cannot read is an error on
// the page, not a silent stop.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { answered, holdAnswers, launch, newPage, onPath, withLogs } from './chromium.js'
import { until } from '../js/test/clock.js'
import { startDevServer } from '../js/test/devserver.js'

let api, browser
before(async () => {
  ;[api, browser] = await Promise.all([startDevServer(), launch()])
})
after(async () => {
  if (browser) await browser.close()
  if (api) await api.stop()
})

/** Opens the demo page and runs `test` on it: { page, context, device, sent(path) }. */
async function onDemo(test, { before: prepare, ready = '1' } = {}) {
  const opened = await newPage(browser)
  if (prepare) await prepare(opened.context)
  // Registered last, so it sees every request first, then hands it on.
  const sent = {}
  await opened.context.route(
    () => true,
    (route) => {
      const path = new URL(route.request().url()).pathname
      if (route.request().method() !== 'OPTIONS') sent[path] = (sent[path] || 0) + 1
      return route.fallback()
    },
  )
  try {
    await withLogs(opened.logs, async () => {
      await opened.page.goto(api.url + '/')
      await opened.page.waitForFunction((want) => document.body.dataset.ready === want, ready)
      const device = await opened.page.locator('#device-id').textContent()
      await test({ ...opened, device, sent: (path) => sent[path] || 0 })
    })
  } finally {
    await opened.close()
  }
}

const loads = (page) => page.locator('#captcha-img').evaluate((img) => Number(img.dataset.loads || 0))
const verdicts = (page, id) => page.locator(`#${id}`).evaluate((el) => Number(el.dataset.n || 0))

describe('the demo page', () => {
  it('renews the captcha image from the keyboard: the image is a button, Enter and Space work', () =>
    onDemo(async ({ page, device }) => {
      await page.locator('#signup-submit').click()
      await page.waitForFunction(() => Number(document.getElementById('captcha-img').dataset.loads) === 1)
      const first = await page.locator('#captcha-img').getAttribute('src')
      assert.equal(await page.locator('#captcha-refresh').getAttribute('aria-label'), 'New captcha image')

      await page.locator('#captcha-refresh').focus()
      await page.keyboard.press('Enter')
      await page.waitForFunction(() => Number(document.getElementById('captcha-img').dataset.loads) === 2)
      assert.equal(await page.evaluate(() => document.activeElement.id), 'captcha-refresh', 'the focus stays on the button')
      await page.keyboard.press('Space')
      await page.waitForFunction(() => Number(document.getElementById('captcha-img').dataset.loads) === 3)
      assert.notEqual(await page.locator('#captcha-img').getAttribute('src'), first)

      // The last image is the one that counts.
      const before = await verdicts(page, 'signup-result')
      await page.locator('#answer').fill(await api.answer('demo', device))
      await page.locator('#answer').press('Enter')
      await page.waitForFunction((n) => Number(document.getElementById('signup-result').dataset.n) > n, before)
      assert.match(await page.locator('#signup-result').textContent(), /the short way: the door checked your captcha answer/)
    }))

  it('one run per button: a second sign-up, answer or wx.login while the first runs sends nothing and strands nothing', async () => {
    let signUps, logins
    await onDemo(
      async ({ page, device, sent }) => {
        // The sign-up runs (the guard wants a captcha): the button is off, and Enter in a field starts no second one.
        await page.locator('#signup-submit').click()
        await until(() => answered(signUps) === 1, 'the first sign-up on the server')
        signUps[0].release()
        await page.waitForFunction(() => !document.getElementById('captcha-panel').hidden)
        assert.equal(await page.locator('#signup-submit').getAttribute('aria-busy'), 'true')
        await page.locator('#username').press('Enter')
        await page.locator('#signup-submit').click()
        assert.equal(sent('/demo/guarded'), 1)

        // The answer sent twice (and Enter) at once: one sign-up carries it, the short way.
        await page.waitForFunction(() => Number(document.getElementById('captcha-img').dataset.loads) === 1)
        const before = await verdicts(page, 'signup-result')
        await page.locator('#answer').fill(await api.answer('demo', device))
        await page.locator('#answer').press('Enter')
        await page.evaluate(() => {
          document.getElementById('verify').click()
          document.getElementById('verify').click()
        })
        await until(() => answered(signUps) === 2, 'the sign-up with the answer on the server')
        signUps[1].release()
        await page.waitForFunction((n) => Number(document.getElementById('signup-result').dataset.n) > n, before)
        assert.equal(sent('/captcha/verify'), 0, 'the short way: no verify')
        assert.equal(await verdicts(page, 'signup-result'), before + 1, 'one verdict: the first run ended, none is left waiting')
        assert.equal(sent('/demo/guarded'), 2, 'the one retry, with the answer')
        await page.waitForFunction(() => !document.getElementById('signup-submit').hasAttribute('aria-busy'))

        // wx.login twice: one login.
        const wxBefore = await verdicts(page, 'wx-result')
        await page.locator('#wx-login').click()
        await page.locator('#wx-login').click()
        await until(() => answered(logins) === 1, 'the login on the server')
        logins[0].release()
        await page.waitForFunction((n) => Number(document.getElementById('wx-result').dataset.n) > n, wxBefore)
        assert.equal(sent('/wx/login'), 1)
        await page.waitForFunction(() => !document.getElementById('wx-login').hasAttribute('aria-busy'))
      },
      {
        before: async (context) => {
          signUps = await holdAnswers(context, '/demo/guarded')
          logins = await holdAnswers(context, '/wx/login')
        },
      },
    )
  })

  it('signs in by phone: the send asks for a captcha first, the code comes to the inbox shown, and the door learns the number', () =>
    onDemo(async ({ page, device, sent }) => {
      const mobile = `+86135${String(process.pid % 10000).padStart(4, '0')}0001`
      await page.locator('#sms-mobile').fill(mobile)
      await page.locator('#sms-send').click()
      await page.waitForFunction(() => Number(document.getElementById('captcha-img').dataset.loads) === 1)
      assert.equal(sent('/sms/send'), 1, 'refused at the door: no pass')
      assert.equal(await page.locator('#sms-captcha-anchor + #captcha-panel').count(), 1, 'the captcha shows in the card')
      await page.locator('#answer').fill(await api.answer('phone', device))
      await page.locator('#answer').press('Enter')
      await page.waitForFunction(() => /^Sent/.test(document.getElementById('sms-result').textContent))
      assert.equal(sent('/sms/send'), 2)
      assert.match(await page.locator('#sms-send').textContent(), /^\d+ 秒后重新获取$/)
      assert.equal(await page.locator('#sms-send').isDisabled(), true)
      await page.waitForFunction(() => document.getElementById('sms-inbox').textContent !== '')
      const code = await api.smsCode(mobile)
      assert.match(await page.locator('#sms-inbox').textContent(), new RegExp(code))

      await page.locator('#sms-code').fill(code)
      await page.locator('#sms-signin').click()
      await page.waitForFunction(() => /^Signed in/.test(document.getElementById('sms-result').textContent))
      assert.equal(await page.locator('#sms-result').textContent(), `Signed in as ${mobile}: the door redeemed your sms pass.`)
      const door = JSON.parse(await page.locator('#sms-door').textContent())
      assert.deepEqual([door.kind, door.mobile, door.scene], ['sms', mobile, 'phone'])
    }))

  it('a configuration it cannot read is a visible error, and every button is off', () =>
    onDemo(
      async ({ page }) => {
        const error = page.locator('#page-error')
        assert.equal(await error.isVisible(), true)
        assert.match(await error.textContent(), /configuration \(\/demo\/config\.json\) could not be read \(HTTP 500\)/)
        assert.equal(await error.getAttribute('role'), 'alert')
        const enabled = await page.locator('button:enabled').count()
        assert.equal(enabled, 0)
      },
      {
        ready: 'error',
        before: (context) => onPath(context, '/demo/config.json', (route) => route.fulfill({ status: 500, body: 'boom' })),
      },
    ))
})
