//! Image captchas in the style of DCloud's uni-captcha: configuration
//! (root defaults and per-scene overrides), codes drawn from a CSPRNG, PNG
//! rendering that resists off-the-shelf OCR, and the three routes.
//!
//! - [`config`]: the captcha keys of `CAPTCHA_CONFIG`, validated once.
//! - [`code`]: the codes (text or math) and the answer comparison.
//! - [`render`]: the PNG.
//! - [`service`]: create, refresh and verify over the store, rate limits
//!   included; [`routes`]: the handlers that parse requests for it.
//!
//! ```
//! use gatehouse::captcha::{CaptchaConfig, Renderer, new_challenge, normalize_answer, png_data_url};
//! let config = CaptchaConfig::from_json(r#"{"scene": {"login": {"size": 5}}}"#).unwrap();
//! let scene = config.scene("login");
//! let challenge = new_challenge(scene.code());
//! let png = Renderer::builtin().render_png(scene, &challenge, scene.width, scene.height).unwrap();
//! assert!(png_data_url(&png).starts_with("data:image/png;base64,"));
//! assert_eq!(normalize_answer(&format!(" {} ", challenge.display)), challenge.answer);
//! ```

pub mod code;
pub mod config;
pub mod render;
pub mod routes;
pub mod service;

pub use code::{Challenge, CodeSpec, MathOperator, MathSpec, new_challenge, normalize_answer};
pub use config::{CaptchaConfig, HEIGHT_RANGE, SceneConfig, WIDTH_RANGE};
pub use render::{RenderError, Renderer, png_data_url};
pub use routes::{create, refresh, verify};
pub use service::{CaptchaService, CaptchaSettings, CaptchaVerifier};
