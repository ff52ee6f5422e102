// Debian's headless Chromium (not a downloaded one), driven by
// playwright-core, for the browser tests of the client kit: the uni-app
// components, the docs' snippets and the demo page. One browser per test
// file; a fresh context (storage, clock, routes) per page.

import { chromium } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'

export function launch() {
  return chromium.launch({
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
}

/**
 * A new page in a context of its own: { page, context, logs, close() }.
 * `clock`: install Playwright's fake clock first (timers and Date the test
 * moves with page.clock.runFor).
 */
export async function newPage(browser, { clock = false } = {}) {
  const context = await browser.newContext()
  if (clock) await context.clock.install()
  const page = await context.newPage()
  page.setDefaultTimeout(10000)
  const logs = []
  page.on('console', (msg) => logs.push(`${msg.type()}: ${msg.text()}`))
  page.on('pageerror', (err) => logs.push(`pageerror: ${err.message}`))
  return { page, context, logs, close: () => context.close() }
}

/**
 * Stops the page's fake clock a second ahead (it keeps flowing while the
 * test talks to the page, so a time just ahead could be past already): from
 * here on, only runFor moves it.
 */
export async function pauseClock(page) {
  await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 1000)
}

/**
 * Routes requests to `path` (a pathname on any host) through `handler(route,
 * n)`, n counting from 1; CORS preflights pass untouched.
 */
export async function onPath(context, path, handler) {
  let n = 0
  await context.route(
    (url) => url.pathname === path,
    (route) => (route.request().method() === 'OPTIONS' ? route.continue() : handler(route, ++n)),
  )
}

/**
 * Holds the answers to `path`: each request goes to the server, and its
 * answer waits until released. Resolves the list of held answers, each
 * { body, release() } once the server has answered (`answered(held)` counts
 * those), in the order the requests were sent, whichever answer came first.
 */
export async function holdAnswers(context, path) {
  const held = []
  await onPath(context, path, async (route) => {
    const slot = { body: undefined, release: undefined }
    held.push(slot)
    const response = await route.fetch()
    const body = await response.json()
    await new Promise((release) => Object.assign(slot, { body, release }))
    await route.fulfill({ response, body: JSON.stringify(body) })
  })
  return held
}

/** How many of `holdAnswers`' requests the server has answered. */
export { answered } from '../js/test/clock.js'

/** Runs `test` with the page; on failure adds the browser's log to the message. */
export async function withLogs(logs, test) {
  try {
    return await test()
  } catch (err) {
    err.message += `\nbrowser log:\n${logs.join('\n')}`
    throw err
  }
}
