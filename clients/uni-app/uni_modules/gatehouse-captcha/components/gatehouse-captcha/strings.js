// Every text the components show or speak (aria-label), in Chinese and in
// English; the `strings` prop replaces any of them. The language follows
// uni.getLocale(): English for en…, Chinese otherwise. The server's own
// messages come in the client's `locale` (Accept-Language).

export const STRINGS = {
	zh: {
		title: '请输入验证码',
		placeholder: '请输入验证码',
		imageLabel: '验证码图片，点击换一张',
		inputLabel: '验证码',
		required: '请填写验证码',
		wait: '操作太频繁，请 {seconds} 秒后再试',
		network: '网络不给力，请稍后再试',
		passExpired: '验证已过期，请重新输入',
		refused: '验证未通过，请输入新的验证码',
		sceneRequired: 'scene不能为空',
		cancel: '取消',
		confirm: '确认'
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
		refused: 'Not accepted: please solve the new one',
		sceneRequired: 'scene is required',
		cancel: 'Cancel',
		confirm: 'OK'
	}
}

/** The defaults of the current locale, with `strings` over them. */
export function textFor(strings) {
	const locale = typeof uni !== 'undefined' && uni.getLocale ? uni.getLocale() : ''
	return Object.assign({}, STRINGS[/^en/i.test(locale || '') ? 'en' : 'zh'], strings || {})
}
