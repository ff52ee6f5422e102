// Every text the components show or speak (aria-label), the captcha's and
// the SMS code's, in Chinese and in English; the `strings` prop replaces
// any of them. The language follows uni.getLocale(): English for en…,
// Chinese otherwise. The server's own messages come in the client's
// `locale` (Accept-Language).

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
		confirm: '确认',
		mobilePlaceholder: '请输入手机号',
		mobileLabel: '手机号',
		mobileRequired: '请填写手机号',
		codePlaceholder: '请输入短信验证码',
		codeLabel: '短信验证码',
		codeRequired: '请填写短信验证码',
		send: '获取验证码',
		sending: '发送中…',
		resend: '{seconds} 秒后重新获取',
		sent: '验证码已发送',
		solve: '请先完成验证'
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
		confirm: 'OK',
		mobilePlaceholder: 'Mobile number',
		mobileLabel: 'Mobile number',
		mobileRequired: 'Please enter your mobile number',
		codePlaceholder: 'SMS code',
		codeLabel: 'SMS code',
		codeRequired: 'Please enter the SMS code',
		send: 'Get code',
		sending: 'Sending…',
		resend: 'Resend in {seconds} s',
		sent: 'Code sent',
		solve: 'Solve the check first'
	}
}

/** The defaults of the current locale, with `strings` over them. */
export function textFor(strings) {
	const locale = typeof uni !== 'undefined' && uni.getLocale ? uni.getLocale() : ''
	return Object.assign({}, STRINGS[/^en/i.test(locale || '') ? 'en' : 'zh'], strings || {})
}
