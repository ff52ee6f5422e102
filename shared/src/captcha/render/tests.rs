//! Tests of whole renderings: sizes, transparency, refusals, fonts, code inside the image.

use rand::SeedableRng;

use super::*;
use crate::captcha::code::new_challenge;

impl Renderer {
    /// The glyphs alone, without decoys and noise (tests of the layout).
    pub(super) fn render_glyphs_only(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
    ) -> Result<RgbaImage, RenderError> {
        let opts = DrawOptions {
            glyphs_only: true,
            ..DrawOptions::default()
        };
        self.draw(cfg, challenge, (width, height), rng, opts)
    }

    /// The full image, and on a second transparent image the tiles and code
    /// glyphs alone, drawn in the same places (tests of the layout).
    pub(super) fn render_with_code_layer(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
    ) -> Result<(RgbaImage, RgbaImage), RenderError> {
        let mut layer = RgbaImage::new(width, height);
        let opts = DrawOptions {
            code_layer: Some(&mut layer),
            ..DrawOptions::default()
        };
        let img = self.draw(cfg, challenge, (width, height), rng, opts)?;
        Ok((img, layer))
    }
}

fn decode(png: &[u8]) -> image::DynamicImage {
    image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("valid PNG")
}

#[test]
fn builtin_font_has_every_glyph() {
    Renderer::from_font_bytes(BUILTIN_FONT.to_vec()).expect("built-in font passes the check");
    assert!(Renderer::builtin().ascent(40.0) > 20.0);
}

#[test]
fn png_has_the_requested_size_and_decodes() {
    let r = Renderer::builtin();
    let cfg = SceneConfig::default();
    for (w, h) in [(150, 50), (60, 24), (600, 300), (200, 40), (61, 299)] {
        let png = r
            .render_png(&cfg, &new_challenge(cfg.code()), w, h)
            .unwrap();
        let img = decode(&png);
        assert_eq!((img.width(), img.height()), (w, h));
        assert_eq!(img.color(), image::ColorType::Rgb8, "opaque background");
    }
    let url = png_data_url(
        &r.render_png(&cfg, &new_challenge(cfg.code()), 150, 50)
            .unwrap(),
    );
    let b64 = url.strip_prefix("data:image/png;base64,").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(decode(&bytes).width(), 150);
}

#[test]
fn transparent_background_gives_rgba_with_clear_pixels() {
    let r = Renderer::builtin();
    let cfg = SceneConfig {
        background: None,
        color: false,
        ..SceneConfig::default()
    };
    let png = r
        .render_png(&cfg, &new_challenge(cfg.code()), 150, 50)
        .unwrap();
    let img = decode(&png).to_rgba8();
    assert_eq!(img.dimensions(), (150, 50));
    assert!(img.pixels().any(|p| p[3] == 0), "some transparent pixels");
    assert!(img.pixels().any(|p| p[3] == 255), "some opaque pixels");
}

#[test]
fn out_of_range_sizes_are_refused() {
    let r = Renderer::builtin();
    let cfg = SceneConfig::default();
    let ch = new_challenge(cfg.code());
    for (w, h) in [(59, 50), (601, 50), (150, 23), (150, 301), (0, 0)] {
        assert_eq!(
            r.render_png(&cfg, &ch, w, h),
            Err(RenderError::Size {
                width: w,
                height: h
            })
        );
    }
    let empty = Challenge {
        display: String::new(),
        answer: String::new(),
    };
    assert_eq!(r.render_png(&cfg, &empty, 150, 50), Err(RenderError::Empty));
}

/// Draws glyphs only (no band, no noise) on a transparent image and checks
/// that ink never reaches the border, at the extremes of the allowed sizes.
#[test]
fn glyphs_stay_inside_the_image() {
    let r = Renderer::builtin();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for (w, h) in [(60, 24), (60, 300), (600, 24), (150, 50), (600, 300)] {
        for (size, math, font) in [
            (6, false, 200.0),
            (4, false, 40.0),
            (1, false, 200.0),
            (4, true, 200.0),
        ] {
            let cfg = SceneConfig {
                size,
                math_expr: math,
                math_min: 100,
                math_max: 999,
                font_size: font,
                noise: 0,
                background: None,
                ..SceneConfig::default()
            };
            for _ in 0..5 {
                let ch = new_challenge(cfg.code());
                let img = r.render_glyphs_only(&cfg, &ch, w, h, &mut rng).unwrap();
                let ink = img.pixels().filter(|p| p[3] > 0).count();
                assert!(ink > 0, "{w}x{h} {}", ch.display);
                for x in 0..w {
                    assert_eq!(img.get_pixel(x, 0)[3], 0, "{w}x{h} top {}", ch.display);
                    assert_eq!(
                        img.get_pixel(x, h - 1)[3],
                        0,
                        "{w}x{h} bottom {}",
                        ch.display
                    );
                }
                for y in 0..h {
                    assert_eq!(img.get_pixel(0, y)[3], 0, "{w}x{h} left {}", ch.display);
                    assert_eq!(
                        img.get_pixel(w - 1, y)[3],
                        0,
                        "{w}x{h} right {}",
                        ch.display
                    );
                }
            }
        }
    }
}

/// Full captchas (tiles, halos, decoys, noise) at the extreme sizes: the
/// tiles and code glyphs, drawn again on a layer of their own, never
/// reach the border, and tiles do occur.
#[test]
fn decorated_code_stays_inside_the_image() {
    let r = Renderer::builtin();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let cfg = SceneConfig::default();
    let big = SceneConfig {
        size: 6,
        font_size: 200.0,
        ..SceneConfig::default()
    };
    let mut with_tiles = 0;
    let mut total = 0;
    for (w, h) in [(60, 24), (60, 300), (600, 24), (600, 300), (150, 50)] {
        for cfg in [&cfg, &big] {
            for _ in 0..8 {
                let ch = new_challenge(cfg.code());
                let (img, layer) = r.render_with_code_layer(cfg, &ch, w, h, &mut rng).unwrap();
                assert_eq!(img.dimensions(), (w, h));
                let ink = layer.pixels().filter(|p| p[3] > 0).count();
                assert!(ink > 0, "{w}x{h} {}", ch.display);
                let edge = |x: u32, y: u32| layer.get_pixel(x, y)[3];
                for x in 0..w {
                    assert_eq!(edge(x, 0), 0, "{w}x{h} top {}", ch.display);
                    assert_eq!(edge(x, h - 1), 0, "{w}x{h} bottom {}", ch.display);
                }
                for y in 0..h {
                    assert_eq!(edge(0, y), 0, "{w}x{h} left {}", ch.display);
                    assert_eq!(edge(w - 1, y), 0, "{w}x{h} right {}", ch.display);
                }
                // A tile: opaque pixels of the tile luma that are not grey.
                total += 1;
                let opaque_tile = layer
                    .pixels()
                    .filter(|p| p[3] == 255)
                    .any(|p| (luma([p[0], p[1], p[2]]) - TILE_LUMA).abs() < 2.0 && p[0] != p[1]);
                with_tiles += opaque_tile as usize;
            }
        }
    }
    assert!(with_tiles * 2 > total, "tiles in {with_tiles} of {total}");
}

#[test]
fn font_check_names_missing_glyphs() {
    let err = Renderer::from_font_bytes(b"not a font".to_vec()).unwrap_err();
    assert!(matches!(err, ConfigError::Font(ref m) if m.contains("not a TrueType")));
    // A real font that lacks the letters (a digits-only subset of the
    // built-in font, made with pyftsubset for this test).
    let digits_only = include_bytes!("../../../../fonts/testdata/digits-only.ttf");
    let err = Renderer::from_font_bytes(digits_only.to_vec()).unwrap_err();
    let ConfigError::Font(msg) = err else {
        panic!("{err:?}")
    };
    assert!(
        msg.contains("no glyph for") && msg.contains('a') && msg.contains('K'),
        "{msg}"
    );
    assert!(
        !msg.split("no glyph for")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .contains('7')
    );
    let path = std::env::temp_dir().join(format!("gatehouse-font-{}.ttf", std::process::id()));
    std::fs::write(&path, digits_only).unwrap();
    let err = Renderer::from_path(path.to_str().unwrap()).unwrap_err();
    assert!(err.to_string().starts_with("CAPTCHA_FONT: "), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()));
    std::fs::remove_file(&path).unwrap();
    assert!(Renderer::from_path("/nonexistent/font.ttf").is_err());
}
