// The uni_modules components in headless Chromium (Debian's, driven by
// playwright-core) against the real dev server: the SFCs compiled with
// @vue/compiler-sfc, mounted with Vue 3 over a small `uni` on fetch.

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, normalize, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

import { compileStyle, compileTemplate, parse } from '@vue/compiler-sfc'
import { chromium } from 'playwright-core'

import { startDevServer } from '../../js/test/devserver.js'

const here = dirname(fileURLToPath(import.meta.url))
const uniApp = resolve(here, '..')
const clientDir = resolve(here, '../../js')
const require = createRequire(import.meta.url)
const vueRuntime = join(dirname(require.resolve('vue/package.json')), 'dist/vue.runtime.esm-browser.js')
const out = join(here, 'out')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const UNI_TAGS = new Set(['view', 'text', 'image', 'input', 'button'])
const CJK = /[\u4e00-\u9fff]/

/** A .vue file as an ES module: script + compiled template + scoped CSS. */
export function compileSfc(file) {
  const source = readFileSync(file, 'utf8')
  const { descriptor, errors } = parse(source, { filename: file })
  if (errors.length) throw errors[0]
  const id = createHash('sha256').update(file).digest('hex').slice(0, 8)
  const scoped = descriptor.styles.some((s) => s.scoped)
  const template = compileTemplate({
    source: descriptor.template.content,
    filename: file,
    id,
    scoped,
    compilerOptions: {
      scopeId: scoped ? `data-v-${id}` : undefined,
      // uni-app's built-in tags are components (the harness supplies them).
      isNativeTag: (tag) => !UNI_TAGS.has(tag) && !tag.includes('-'),
    },
  })
  if (template.errors.length) throw new Error(`${file}: ${template.errors.join('\n')}`)
  const css = descriptor.styles
    .map((style) => {
      const compiled = compileStyle({ source: style.content, filename: file, id: `data-v-${id}`, scoped: style.scoped })
      if (compiled.errors.length) throw compiled.errors[0]
      return compiled.code
    })
    .join('\n')
  const script = descriptor.script.content.replace(/export default/, 'const __sfc__ =')
  return `${script}
${template.code}
__sfc__.render = render
${scoped ? `__sfc__.__scopeId = 'data-v-${id}'` : ''}
const __style__ = document.createElement('style')
__style__.textContent = ${JSON.stringify(css)}
document.head.appendChild(__style__)
export default __sfc__
`
}

/** Serves the harness page, Vue, the client and the compiled components. */
function startPageServer() {
  const page = `<!doctype html><meta charset="utf-8"><title>gatehouse components</title>
<script type="importmap">{"imports":{"vue":"/vendor/vue.js","gatehouse-client":"/client/index.js"}}</script>
<div id="app"></div><script type="module" src="/harness.js"></script>`
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname)
    const send = (type, body) => res.writeHead(200, { 'content-type': type }).end(body)
    const js = 'text/javascript; charset=utf-8'
    try {
      if (path === '/') return send('text/html; charset=utf-8', page)
      if (path === '/vendor/vue.js') return send(js, readFileSync(vueRuntime))
      if (path === '/client/index.js') return send(js, readFileSync(join(clientDir, 'dist/index.mjs')))
      if (path === '/harness.js') return send(js, readFileSync(join(here, 'harness.js')))
      const file = normalize(join(uniApp, path))
      if (path.startsWith('/uni_modules/') && path.endsWith('.vue') && file.startsWith(uniApp)) {
        return send(js, compileSfc(file))
      }
      res.writeHead(404).end()
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err.stack))
    }
  })
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)))
}

let api, pages, context, profile
before(async () => {
  api = await startDevServer()
  pages = await startPageServer()
  profile = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'))
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30000,
  })
})
after(async () => {
  if (context) await context.close()
  if (pages) pages.close()
  if (api) await api.stop()
  if (profile) rmSync(profile, { recursive: true, force: true })
})

let devices = 0
async function open(query) {
  const device = `browser-${process.pid}-${++devices}`
  const page = await context.newPage()
  page.setDefaultTimeout(10000)
  const logs = []
  page.on('console', (msg) => logs.push(`${msg.type()}: ${msg.text()}`))
  page.on('pageerror', (err) => logs.push(`pageerror: ${err.message}`))
  const search = new URLSearchParams({ api: api.url, device, ...query })
  await page.goto(`http://127.0.0.1:${pages.address().port}/?${search}`)
  await page.waitForFunction(() => window.harness && window.harness.ready)
  const harness = () => page.evaluate(() => JSON.parse(JSON.stringify(window.harness)))
  const answer = (scene) => api.answer(scene, device)
  return { page, device, harness, answer, logs }
}

const imageSrc = (page) => page.locator('img').getAttribute('src')
/** Waits until the image's src differs from `before` and is a PNG data URL. */
const newImage = (page, before) =>
  page.waitForFunction(
    (old) => {
      const src = document.querySelector('img') && document.querySelector('img').getAttribute('src')
      return src && src !== old && src.startsWith('data:image/png;base64,')
    },
    before,
  )

describe('gatehouse-captcha', () => {
  it('shows an image, refreshes it on click, answers a wrong answer with the error and a new image, and verifies the right one', async () => {
    const { page, harness, answer, logs } = await open({ component: 'captcha', scene: 'login', locale: 'zh-CN' })
    try {
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

      // A wrong answer: the error shows, and a new image comes.
      const right = await answer('login')
      await input.fill(right === 'zzzz' ? 'yyyy' : 'zzzz')
      assert.equal(await page.locator('#model').textContent(), right === 'zzzz' ? 'yyyy' : 'zzzz', 'v-model')
      await input.press('Enter')
      await newImage(page, second)
      const error = page.locator('.gatehouse-captcha__error')
      await error.waitFor()
      assert.match(await error.textContent(), CJK, 'uni-captcha-verify-fail, in Chinese with locale zh-CN')
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
      assert.equal(await error.count(), 0, 'the error is gone')
      assert.deepEqual(h.errors, undefined)
      mkdirSync(out, { recursive: true })
      await page.screenshot({ path: join(out, 'gatehouse-captcha.png') })
    } catch (err) {
      err.message += `\nbrowser log:\n${logs.join('\n')}`
      throw err
    } finally {
      await page.close()
    }
  })

  it('takes six-character and math answers, in English with locale en', async () => {
    for (const scene of ['long', 'math']) {
      const { page, harness, answer, logs } = await open({ component: 'captcha', scene, locale: 'en' })
      try {
        await newImage(page, null)
        const input = page.locator('input')
        await input.fill('wrong!')
        await input.press('Enter')
        const error = page.locator('.gatehouse-captcha__error')
        await error.waitFor()
        assert.doesNotMatch(await error.textContent(), CJK)
        const right = await answer(scene)
        if (scene === 'long') assert.equal(right.length, 6)
        else assert.match(right, /^-?\d+$/)
        await input.fill(right)
        assert.equal(await input.inputValue(), right, 'nothing cut the answer short')
        await input.press('Enter')
        await page.waitForFunction(() => window.harness.verified.length === 1)
        assert.equal((await harness()).verified[0].errCode, 0)
      } catch (err) {
        err.message += `\nbrowser log:\n${logs.join('\n')}`
        throw err
      } finally {
        await page.close()
      }
    }
  })
})

describe('gatehouse-popup-captcha', () => {
  it('open() shows the captcha; confirm needs an answer, keeps the dialog on a wrong one, and emits confirm with the result', async () => {
    const { page, harness, answer, logs } = await open({ component: 'popup', scene: 'login' })
    try {
      assert.equal(await page.locator('.gatehouse-popup-captcha').count(), 0, 'closed at first')
      await page.locator('#open').click()
      await page.locator('.gatehouse-popup-captcha').waitFor()
      await newImage(page, null)
      assert.equal(await page.locator('.gatehouse-popup-captcha__title').textContent(), 'Captcha')

      const confirm = page.locator('.gatehouse-popup-captcha__btn.is-confirm')
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
      assert.equal(await page.locator('.gatehouse-popup-captcha').count(), 1, 'still open')
      assert.equal((await harness()).confirmed.length, 0)

      await input.fill(await answer('login'))
      await confirm.click()
      await page.locator('.gatehouse-popup-captcha').waitFor({ state: 'detached' })
      const h = await harness()
      assert.equal(h.confirmed.length, 1)
      assert.equal(h.confirmed[0].errCode, 0)
      assert.equal(h.errors, undefined)

      // Opened again: a fresh captcha and an empty answer.
      await page.locator('#open').click()
      await newImage(page, null)
      assert.equal(await page.locator('input').inputValue(), '')
      assert.equal(await page.locator('#model').textContent(), '')
    } catch (err) {
      err.message += `\nbrowser log:\n${logs.join('\n')}`
      throw err
    } finally {
      await page.close()
    }
  })
})
