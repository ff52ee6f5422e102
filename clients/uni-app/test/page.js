// The page the uni_modules components are tested on, in headless Chromium
// against the real dev server: the SFCs compiled with @vue/compiler-sfc and
// mounted with Vue 3 over a small `uni` on fetch (harness.js).

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join, normalize, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import { after, before } from 'node:test'

import { compileScript, compileStyle, compileTemplate, parse } from '@vue/compiler-sfc'

import { launch, newPage, withLogs } from '../../test/chromium.js'
import { startDevServer } from '../../js/test/devserver.js'

const here = dirname(fileURLToPath(import.meta.url))
const uniApp = resolve(here, '..')
const clientDir = resolve(here, '../../js')
const require = createRequire(import.meta.url)
const vueRuntime = join(dirname(require.resolve('vue/package.json')), 'dist/vue.runtime.esm-browser.js')
export const out = join(here, 'out')
const UNI_TAGS = new Set(['view', 'text', 'image', 'input', 'button'])
export const CJK = /[\u4e00-\u9fff]/

/**
 * A .vue file as an ES module: script (or <script setup>) + compiled template
 * + scoped CSS. `source` defaults to the file's text (a docs snippet
 * passes its own).
 */
export function compileSfc(file, source = readFileSync(file, 'utf8')) {
  const { descriptor, errors } = parse(source, { filename: file })
  if (errors.length) throw errors[0]
  const id = createHash('sha256').update(file).digest('hex').slice(0, 8)
  const scoped = descriptor.styles.some((s) => s.scoped)
  const compilerOptions = {
    scopeId: scoped ? `data-v-${id}` : undefined,
    // uni-app's built-in tags are components (builtins.js supplies them).
    isNativeTag: (tag) => !UNI_TAGS.has(tag) && !tag.includes('-'),
  }
  let code
  if (descriptor.scriptSetup) {
    const script = compileScript(descriptor, { id, inlineTemplate: true, templateOptions: { compilerOptions } })
    code = script.content.replace(/export default/, 'const __sfc__ =')
  } else {
    const template = compileTemplate({ source: descriptor.template.content, filename: file, id, scoped, compilerOptions })
    if (template.errors.length) throw new Error(`${file}: ${template.errors.join('\n')}`)
    code = `${descriptor.script.content.replace(/export default/, 'const __sfc__ =')}\n${template.code}\n__sfc__.render = render`
  }
  const css = descriptor.styles
    .map((style) => {
      const compiled = compileStyle({ source: style.content, filename: file, id: `data-v-${id}`, scoped: style.scoped })
      if (compiled.errors.length) throw compiled.errors[0]
      return compiled.code
    })
    .join('\n')
  return `${code}
${scoped ? `__sfc__.__scopeId = 'data-v-${id}'` : ''}
const __style__ = document.createElement('style')
__style__.textContent = ${JSON.stringify(css)}
document.head.appendChild(__style__)
export default __sfc__
`
}

/** A page that loads Vue, the client (as 'vue' and 'gatehouse-client') and then `script`. */
export const pageWith = (script) => `<!doctype html><meta charset="utf-8"><title>gatehouse components</title>
<script type="importmap">{"imports":{"vue":"/vendor/vue.js","gatehouse-client":"/client/index.js"}}</script>
<div id="app"></div><script type="module" src="${script}"></script>`

/**
 * Serves the harness page, Vue, the client and the compiled components;
 * `extra(path)` may serve more ({ type, body }).
 */
export function startPageServer(extra = () => null) {
  const page = pageWith('/harness.js')
  // Each component once per server: every page of a test file loads them.
  const compiled = new Map()
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname)
    const send = (type, body) => res.writeHead(200, { 'content-type': type }).end(body)
    const js = 'text/javascript; charset=utf-8'
    try {
      if (path === '/') return send('text/html; charset=utf-8', page)
      if (path === '/vendor/vue.js') return send(js, readFileSync(vueRuntime))
      if (path === '/client/index.js') return send(js, readFileSync(join(clientDir, 'dist/index.mjs')))
      if (path === '/harness.js' || path === '/builtins.js') return send(js, readFileSync(join(here, path)))
      const file = normalize(join(uniApp, path))
      if (path.startsWith('/uni_modules/') && path.endsWith('.vue') && file.startsWith(uniApp)) {
        if (!compiled.has(file)) compiled.set(file, compileSfc(file))
        return send(js, compiled.get(file))
      }
      if (path.startsWith('/uni_modules/') && path.endsWith('.js') && file.startsWith(uniApp)) {
        return send(js, readFileSync(file))
      }
      const more = extra(path)
      if (more) return send(more.type, more.body)
      res.writeHead(404).end()
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err.stack))
    }
  })
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)))
}

/**
 * The test file's dev server, page server and browser (its before and
 * after hooks), and `on(query, test, options)`: opens the harness with
 * `component` and `query`, runs `test` on it (the browser's log added to a
 * failure) and closes it.
 */
export function harnessSuite(component) {
  let api, pages, browser
  before(async () => {
    ;[api, pages, browser] = await Promise.all([startDevServer(), startPageServer(), launch()])
  })
  after(async () => {
    if (browser) await browser.close()
    if (pages) pages.close()
    if (api) await api.stop()
  })
  return async function on(query, test, options) {
    const opened = await openHarness(browser, api, pages, { component, ...query }, options)
    try {
      await withLogs(opened.logs, () => test(opened))
    } finally {
      await opened.close()
    }
  }
}

let devices = 0
/**
 * Opens the harness on a new device in a context of its own: { page,
 * context, api, device, logs, harness(), answer(scene), close() }. `query` goes
 * to the harness (component, scene, locale, strings …); `clock` installs a
 * fake clock first; `before(context)` may route requests before the page loads.
 */
export async function openHarness(browser, api, pages, query, { clock = false, before } = {}) {
  const device = `browser-${process.pid}-${++devices}`
  const opened = await newPage(browser, { clock })
  if (before) await before(opened.context)
  const search = new URLSearchParams({ api: api.url, device, ...query })
  await opened.page.goto(`http://127.0.0.1:${pages.address().port}/?${search}`)
  await opened.page.waitForFunction(() => window.harness && window.harness.ready)
  const harness = () => opened.page.evaluate(() => JSON.parse(JSON.stringify(window.harness)))
  return { ...opened, api, device, harness, answer: (scene) => api.answer(scene, device) }
}

export const imageSrc = (page) => page.locator('img').getAttribute('src')

/** Waits until the image's src differs from `before` and is a PNG data URL. */
export const newImage = (page, before) =>
  page.waitForFunction(
    (old) => {
      const src = document.querySelector('img') && document.querySelector('img').getAttribute('src')
      return src && src !== old && src.startsWith('data:image/png;base64,')
    },
    before,
  )

/** The requests the page made to `path`, by method and pathname. */
export const requestsTo = (h, path) => h.requests.filter((r) => new URL(r.url).pathname === path).length
