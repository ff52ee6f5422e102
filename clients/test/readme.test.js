// The client snippets of docs/clients.md ("Clients"), run as they are written against the real
// dev server (only the placeholder base URL becomes the dev server's):
// - the native mini-program's app.js, with `require('gatehouse-client')`
//   answered by the CommonJS build, turns the Tencent captcha
//   mini-program's jump result into a ticket pass; its page (json, wxml,
//   js) renders <gatehouse-captcha> from a miniprogram_npm laid out as
//   WeChat's Build npm lays it out, under miniprogram-simulate, and signs up
//   with the pass;
// - uni-app's main.js and page, in Chromium, sign up through the popup;
// - the web page, in Chromium, pays through the Tencent captcha (the
//   emulator's stand-in, served for Tencent's script address).

import assert from 'node:assert/strict'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { launch, newPage, withLogs } from './chromium.js'
import { snippet } from './readme.js'
import { until } from '../js/test/clock.js'
import { startDevServer } from '../js/test/devserver.js'
import { mount, packageDir, setApp } from '../js/test/simulate.js'
import { nodeWx } from '../js/test/wx.js'
import { compileSfc, pageWith, startPageServer } from '../uni-app/test/page.js'

const require = createRequire(import.meta.url)
const cjsBuild = require('../js/miniprogram/index.js')

let api, browser, work
before(async () => {
  ;[api, browser] = await Promise.all([startDevServer(), launch()])
  work = mkdtempSync(join(tmpdir(), 'gatehouse-readme-'))
})
after(async () => {
  setApp(null)
  if (browser) await browser.close()
  if (api) await api.stop()
  if (work) rmSync(work, { recursive: true, force: true })
})

const guardedPassKind = async (client, pass) =>
  (await client.request('POST', '/demo/guarded', { body: {}, pass })).guard.passKind

describe('docs/clients.md: a native mini-program', () => {
  /** The guide's app.js, run as the base library runs it: App, wx and require are the mini-program's. */
  function runAppJs(wx) {
    let app = null
    const requireInMiniProgram = (name) => {
      if (name !== 'gatehouse-client') throw new Error(`app.js requires ${name}`)
      return cjsBuild
    }
    const code = snippet('A native mini-program', { firstLine: '// app.js', baseUrl: api.url })
    new Function('require', 'App', 'wx', code)(requireInMiniProgram, (definition) => (app = definition), wx)
    assert.ok(app && app.gatehouse, 'app.js called App({ gatehouse })')
    return app
  }

  it('app.js: the Tencent captcha mini-program’s jump result, in App.onShow, becomes a ticket pass the door takes', async () => {
    const wx = nodeWx(api)
    const app = runAppJs(wx)
    const passing = app.tencentPass('demo')
    await until(() => wx.calls.navigateToMiniProgram.length === 1, 'the jump')
    assert.equal(wx.calls.navigateToMiniProgram[0].appId, cjsBuild.TENCENT_CAPTCHA_MINIPROGRAM)
    // Back from the captcha mini-program: its result in referrerInfo.extraData.
    const solved = await api.tencentTicket()
    const options = { referrerInfo: { appId: cjsBuild.TENCENT_CAPTCHA_MINIPROGRAM, extraData: { ret: 0, ticket: solved.ticket } } }
    app.onShow(options)
    const pass = await passing
    assert.equal(typeof pass, 'string')
    assert.equal(options.referrerInfo.extraData, null, 'read once')
    app.onShow(options)
    assert.equal(await guardedPassKind(app.gatehouse, pass), 'ticket')
  })

  it('the page: <gatehouse-captcha> from Build npm’s miniprogram_npm, and its pass signs up', async () => {
    const app = runAppJs(nodeWx(api))
    setApp(app)
    // The mini-program as DevTools leaves it after Build npm: the package's miniprogram directory copied.
    const root = join(work, 'miniprogram')
    cpSync(join(packageDir, 'miniprogram'), join(root, 'miniprogram_npm/gatehouse-client'), { recursive: true })
    const pageDir = join(root, 'pages/signup')
    mkdirSync(pageDir, { recursive: true })
    const json = JSON.parse(snippet('A native mini-program', { lang: 'json' }))
    writeFileSync(join(pageDir, 'index.json'), JSON.stringify(json))
    writeFileSync(join(pageDir, 'index.wxml'), snippet('A native mini-program', { firstLine: '<!-- pages/signup/index.wxml -->' }))
    writeFileSync(join(pageDir, 'index.js'), snippet('A native mini-program', { firstLine: '// pages/signup/index.js' }))
    // WeChat resolves an npm component path in miniprogram_npm.
    const usingComponents = {}
    for (const [tag, path] of Object.entries(json.usingComponents)) usingComponents[tag] = `/miniprogram_npm/${path}`
    const page = mount(join(pageDir, 'index'), {}, { rootPath: root, usingComponents })

    const captcha = page.inner('#captcha')
    await until(() => (captcha.comp.data.image || '').startsWith('data:image/png'), 'the captcha image')
    captcha.type('.gatehouse-captcha__input', await api.answer('demo', await app.gatehouse.deviceId()))
    await until(() => captcha.comp.data.answer !== '')
    captcha.tap('.gatehouse-captcha__submit')
    await until(() => page.comp.data.result !== '', 'the sign-up')
    assert.equal(page.comp.data.result, 'signed up with a captcha pass')
    // Off the page, the component ends its timers (the pass's expiry would otherwise run on for minutes).
    page.detach()
    assert.equal(captcha.comp.instance.flow, null)
  })
})

describe('docs/clients.md: uni-app and the web, in Chromium', () => {
  let pages
  before(async () => {
    const shell = `<template><signup-page /></template>
<script>
import SignupPage from '/pages/signup/signup.vue'
export default { components: { SignupPage } }
</script>`
    const js = 'text/javascript; charset=utf-8'
    pages = await startPageServer((path) => {
      if (path === '/readme.html') return { type: 'text/html; charset=utf-8', body: pageWith('/readme-boot.js') }
      if (path === '/main.js') return { type: js, body: snippet('uni-app (Vue 3)', { firstLine: '// main.js', baseUrl: api.url }) }
      // uni-app's router renders the page inside App.vue; this App.vue stands for it.
      if (path === '/App.vue') return { type: js, body: compileSfc('/App.vue', shell) }
      if (path === '/pages/signup/signup.vue') {
        return { type: js, body: compileSfc(path, snippet('uni-app (Vue 3)', { firstLine: '<!-- pages/signup/signup.vue -->' })) }
      }
      if (path === '/readme-boot.js') return { type: js, body: BOOT }
      if (path === '/web/index.html') {
        return { type: 'text/html; charset=utf-8', body: snippet('The web (and app): the `TencentCaptcha` callback', { lang: 'html', baseUrl: api.url }) }
      }
      if (path === '/web/gatehouse-client.mjs') return { type: js, body: readFileSync(join(packageDir, 'dist/index.mjs')) }
      return null
    })
  })
  after(() => pages && pages.close())

  // What uni-app does before the page shows: main.js's createApp(), the
  // built-in components, easycom's registration of the uni_module, mount.
  const BOOT = `import { BUILT_INS } from '/builtins.js'
import GatehousePopupCaptcha from '/uni_modules/gatehouse-captcha/components/gatehouse-popup-captcha/gatehouse-popup-captcha.vue'
import { createApp } from '/main.js'
const { app } = createApp()
for (const c of BUILT_INS) app.component(c.name, c)
app.component('gatehouse-popup-captcha', GatehousePopupCaptcha)
app.mount('#app')
window.harness.ready = true
`

  it('uni-app: main.js provides the client; the page’s guard.request opens the popup on the 403 and signs up with its pass', async () => {
    const { page, logs, close } = await newPage(browser)
    try {
      await withLogs(logs, async () => {
        const device = `readme-uni-${process.pid}`
        await page.goto(`http://127.0.0.1:${pages.address().port}/readme.html?device=${device}`)
        await page.waitForFunction(() => window.harness && window.harness.ready)
        await page.locator('.sign-up').click()
        await page.locator('.gatehouse-popup-captcha').waitFor()
        await page.waitForFunction(() => (document.querySelector('img') || {}).src?.startsWith('data:image/png'))
        await page.locator('input').fill(await api.answer('demo', device))
        await page.locator('.gatehouse-popup-captcha__btn.is-confirm').click()
        await page.locator('.result').filter({ hasText: 'signed up' }).waitFor()
        assert.equal(await page.locator('.result').textContent(), 'signed up with a captcha pass')
        const paths = await page.evaluate(() => window.harness.requests.map((r) => `${r.method} ${new URL(r.url).pathname}`))
        assert.deepEqual(paths, ['POST /demo/guarded', 'GET /guard/status', 'POST /captcha/create', 'POST /captcha/verify', 'POST /demo/guarded'])
      })
    } finally {
      await close()
    }
  })

  it('the web: the page’s guard.request shows the Tencent captcha on the 403 and pays with its ticket pass', async () => {
    const { page, context, logs, close } = await newPage(browser)
    const { tencentScript } = await (await fetch(`${api.url}/demo/config.json`)).json()
    // Tencent's host is the emulator: its stand-in script, and the tickets the stand-in asks it for.
    await context.route('https://turing.captcha.qcloud.com/**', async (route) => {
      const { pathname } = new URL(route.request().url())
      const response = await route.fetch({ url: new URL(pathname, tencentScript).href })
      await route.fulfill({ response })
    })
    try {
      await withLogs(logs, async () => {
        await page.goto(`http://127.0.0.1:${pages.address().port}/web/index.html`)
        await page.locator('#pay').click()
        await page.locator('#tcaptcha-stand-in-verify').click()
        await page.locator('#result').filter({ hasText: 'paid' }).waitFor()
        assert.equal(await page.locator('#result').textContent(), 'paid with a ticket pass')
      })
    } finally {
      await close()
    }
  })
})
