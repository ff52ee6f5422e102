// What the native components share (a WeChat Behavior): the `scene` and
// `strings` properties; `text`, the strings over the defaults of WeChat's
// language, set again (and shown: the component's show()) when `strings`
// changes; the component's start() when attached, its stop() when detached.

const { textFor } = require('./strings.js')

module.exports = Behavior({
  properties: {
    scene: { type: String, value: '' },
    // Any text, over the defaults of WeChat's language (strings.js).
    strings: { type: Object, value: null },
  },

  data: {
    text: {},
  },

  observers: {
    strings(strings) {
      this.setData({ text: textFor(strings) })
      this.show()
    },
  },

  lifetimes: {
    attached() {
      this.setData({ text: textFor(this.data.strings) })
      this.start()
    },
    detached() {
      this.stop()
    },
  },
})
