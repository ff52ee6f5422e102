// WeChat's own custom-component test tool, miniprogram-simulate, in Node:
// it renders into a DOM (jsdom here), compiles WXML with WeChat's wcc
// (miniprogram-compiler) and runs the component's js with `Component` and a
// mock `wx` as globals. getApp() answers whatever app the test sets.

import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { JSDOM } = require('jsdom')

const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true })
// j-component dispatches jsdom's events on jsdom's nodes: these names must be jsdom's.
for (const name of ['window', 'document', 'Element', 'HTMLElement', 'Node', 'Event', 'CustomEvent', 'TouchEvent', 'MutationObserver']) {
  globalThis[name] = name === 'window' ? dom.window : dom.window[name]
}
export const simulate = require('miniprogram-simulate')

let app = null
globalThis.getApp = () => app
/** What getApp() answers from now on. */
export function setApp(value) {
  app = value
}

export const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
export const COMPONENT = join(packageDir, 'miniprogram/gatehouse-captcha/index')

/**
 * Renders the component at `path` (no extension) with `properties`, its
 * events recorded from the start: { comp, events, find(cls), tap(sel),
 * type(sel, value), confirm(sel), inner(sel) }. `inner(sel)` gives the same
 * actions inside the custom component `sel` (e.g. '#captcha' in a page).
 * `options` go to simulate.load (e.g. usingComponents).
 */
export function mount(path, properties = {}, options = {}) {
  const id = simulate.load(path, 'test-root', { compiler: 'official', ...options })
  const comp = simulate.render(id, properties)
  const events = {}
  for (const name of ['pass', 'expired', 'error', 'answer', 'sent', 'verified', 'needpass']) {
    events[name] = []
    comp.addEventListener(name, (event) => events[name].push(event.detail))
  }
  comp.attach(document.createElement('parent-wrapper'))
  return {
    comp,
    events,
    /** The attributes of the first node of class `cls` in the rendered tree, by name. */
    find(cls) {
      const node = findNode(comp.toJSON(), cls.replace(/^\./, ''))
      return node && Object.fromEntries(node.attrs.map((a) => [a.name, a.value]))
    },
    ...actions(comp),
    /** Takes it off the page: the detached lifetime ends its timers. */
    detach: () => comp.detach(),
  }
}

function actions(component) {
  const select = (selector) => {
    const found = component.querySelector(selector)
    if (!found) throw new Error(`nothing matches ${selector}`)
    return found
  }
  return {
    tap: (selector) => select(selector).dispatchEvent('tap'),
    type: (selector, value) => select(selector).dispatchEvent('input', { detail: { value } }),
    confirm: (selector) => select(selector).dispatchEvent('confirm', { detail: {} }),
    inner: (selector) => Object.assign(actions(select(selector)), { comp: select(selector) }),
  }
}

function findNode(tree, cls) {
  if (!tree || typeof tree !== 'object') return null
  const classes = (tree.attrs || []).find((a) => a.name === 'class')
  if (classes && String(classes.value).split(/\s+/).includes(cls)) return tree
  for (const child of tree.children || []) {
    const found = findNode(child, cls)
    if (found) return found
  }
  return null
}
