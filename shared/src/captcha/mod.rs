//! Image captchas in the style of DCloud's uni-captcha: configuration
//! (root defaults and per-scene overrides), codes drawn from a CSPRNG, and PNG
//! rendering that resists off-the-shelf OCR.
//!
//! ```
//! use gatehouse::captcha::{CaptchaConfig, Renderer, new_challenge, normalize_answer, png_data_url};
//! let config = CaptchaConfig::from_json(r#"{"scene": {"login": {"size": 5}}}"#).unwrap();
//! let scene = config.scene("login");
//! let challenge = new_challenge(scene);
//! let png = Renderer::builtin().render_png(scene, &challenge, scene.width, scene.height).unwrap();
//! assert!(png_data_url(&png).starts_with("data:image/png;base64,"));
//! assert_eq!(normalize_answer(&format!(" {} ", challenge.display)), challenge.answer);
//! ```

pub mod code;
pub mod config;
pub mod render;
pub mod service;

pub use code::{Challenge, new_challenge, normalize_answer};
pub use config::{
    CaptchaConfig, ConfigError, HEIGHT_RANGE, MathOperator, SceneConfig, WIDTH_RANGE,
    valid_scene_name,
};
pub use render::{RenderError, Renderer, png_data_url};

/// One captcha end to end: a challenge for `cfg` and its image as a data URL.
pub fn generate(
    renderer: &Renderer,
    cfg: &SceneConfig,
    width: u32,
    height: u32,
) -> Result<(Challenge, String), RenderError> {
    let challenge = new_challenge(cfg);
    let png = renderer.render_png(cfg, &challenge, width, height)?;
    Ok((challenge, png_data_url(&png)))
}
