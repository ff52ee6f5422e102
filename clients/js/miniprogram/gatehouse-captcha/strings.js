// Every text <gatehouse-captcha> shows or speaks (aria-label), in Chinese
// and in English, the same as the uni-app components' (a test holds the two
// tables equal); the `strings` property replaces any of them. The language
// follows WeChat's (wx.getAppBaseInfo().language): English for en…,
// Chinese otherwise. The server's own messages come in the client's `locale`.

const STRINGS = {
  zh: {
    title: '请输入验证码',
    placeholder: '请输入验证码',
    imageLabel: '验证码图片，点击换一张',
    inputLabel: '验证码',
    required: '请填写验证码',
    wait: '操作太频繁，请 {seconds} 秒后再试',
    network: '网络不给力，请稍后再试',
    passExpired: '验证已过期，请重新输入',
    sceneRequired: 'scene不能为空',
    cancel: '取消',
    confirm: '确认',
  },
  en: {
    title: 'Enter the captcha',
    placeholder: 'Enter the characters',
    imageLabel: 'Captcha image, tap for a new one',
    inputLabel: 'Captcha answer',
    required: 'Please enter the captcha',
    wait: 'Too many tries: try again in {seconds} s',
    network: 'No network: please try again',
    passExpired: 'The check expired: please solve the new one',
    sceneRequired: 'scene is required',
    cancel: 'Cancel',
    confirm: 'OK',
  },
}

function language() {
  try {
    const info = wx.getAppBaseInfo ? wx.getAppBaseInfo() : wx.getSystemInfoSync()
    return info.language || ''
  } catch (e) {
    return ''
  }
}

/** The defaults of WeChat's language, with `strings` over them. */
function textFor(strings) {
  return Object.assign({}, STRINGS[/^en/i.test(language()) ? 'en' : 'zh'], strings || {})
}

module.exports = { STRINGS, textFor }
