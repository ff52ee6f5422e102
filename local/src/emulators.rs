//! The emulators the dev server starts in place of WeChat and Tencent when
//! no real credentials are configured, and the development credentials it
//! gives them (nothing here is a real secret).

use crate::sms_emulator::SmsEmulator;
use crate::tencent_emulator::TencentEmulator;
use crate::wechat_emulator::WechatEmulator;

/// The emulators the dev server started in place of WeChat and Tencent;
/// they stop when this is dropped.
#[derive(Default)]
pub struct Emulators {
    pub wechat: Option<WechatEmulator>,
    pub tencent: Option<TencentEmulator>,
    pub sms: Option<SmsEmulator>,
}

/// App id and credentials the dev server gives its emulators.
pub const DEV_WX_APPID: &str = "wxdevgatehouse0001";
pub const DEV_WX_SECRET: &str = "dev-wechat-secret";
pub const DEV_TENCENT_SECRET_ID: &str = "AKIDdevgatehouse";
pub const DEV_TENCENT_SECRET_KEY: &str = "dev-tencent-secret-key";
pub const DEV_CAPTCHA_APP_ID: u64 = 190000001;
pub const DEV_CAPTCHA_APP_SECRET_KEY: &str = "dev-app-secret-key";
pub const DEV_SMS_SDK_APP_ID: &str = "1400000001";
pub const DEV_SMS_SIGN_NAME: &str = "gatehouse";
pub const DEV_SMS_TEMPLATE_ID: &str = "1000001";
