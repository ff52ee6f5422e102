//! PNG rendering of a challenge: `Renderer`, the order of drawing, PNG encoding.
//!
//! Every drawable glyph is rasterised once, upright, when the renderer is
//! built (with a dilated copy for halos; `raster.rs`). A captcha then draws
//! each glyph by inverse mapping only the pixels of its own box through one
//! transform: its sine warp, rotation, shear and stretch (bilinear sampling;
//! `glyph.rs`). Glyphs are large (the tallest fills most of the height),
//! solid, each in its own dark colour (`colour.rs`), and kept apart so that
//! none hides another (`layout.rs`). Two glyphs (one in a code of one or two),
//! never side by side, sit on a rounded tile, blue or amber, and are drawn in
//! fine stripes: one stripe in the background colour, the next in the other
//! of blue and amber at the tile's luma (`tile.rs`). The eye joins the stripes
//! into the whole glyph (also for red-green colour-blind people: blue-yellow
//! is the axis they keep), but in the greyscale that OCR reads every other
//! stripe vanishes into the tile. Glyphs next to a tile get a halo in the
//! background colour. Under the glyphs lie faint small decoy glyphs; over
//! them run thin noise curves (imageproc's antialiased lines) that take the
//! colour of the glyph they cross (the tile-luma colour near a tiled glyph;
//! `noise.rs`). The layout is fitted so that every glyph and tile, transformed
//! and warped, lies inside the image at any allowed size.

mod colour;
mod glyph;
mod layout;
mod noise;
mod raster;
mod tile;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use ab_glyph::{Font, FontArc, PxScale, ScaleFont};
use base64::Engine;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Rgba, RgbaImage};
use rand::Rng;

use super::code::{Challenge, drawable_chars};
use super::config::{HEIGHT_RANGE, SceneConfig, WIDTH_RANGE};
use crate::config::ConfigError;
use colour::luma;
use glyph::{Shape, draw_glyph};
use raster::{REF_PX, Raster, RasterRef, rasterise};
use tile::{TILE_LUMA, blue_yellow_pair, draw_tile, pick_tiles};

/// The default font (a subset of DejaVu Sans Bold, see fonts/LICENSE).
pub const BUILTIN_FONT: &[u8] = include_bytes!("../../../../fonts/DejaVuSans-Bold-captcha.ttf");

/// PNG row filter. Measured on a default captcha (benches/captcha.rs,
/// fast deflate): none 22.6 kB 42 µs, Sub 10.5 kB 25 µs, Up 11.8 kB 23 µs,
/// Paeth 9.7 kB 26 µs, adaptive 9.6 kB 47 µs.
const PNG_FILTER: FilterType = FilterType::Paeth;

/// Rendering failed (never for a validated config and an in-range size).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "image size {width}x{height} outside {}-{} x {}-{}",
        WIDTH_RANGE.start(), WIDTH_RANGE.end(), HEIGHT_RANGE.start(), HEIGHT_RANGE.end()
    )]
    Size { width: u32, height: u32 },
    #[error("nothing to draw")]
    Empty,
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

/// `data:image/png;base64,…`
pub fn png_data_url(png: &[u8]) -> String {
    let mut s = String::with_capacity(22 + png.len().div_ceil(3) * 4);
    s.push_str("data:image/png;base64,");
    base64::engine::general_purpose::STANDARD.encode_string(png, &mut s);
    s
}

/// How [`Renderer::draw`] draws: the default is the production captcha; the
/// rest serve the layout tests.
#[derive(Default)]
struct DrawOptions<'a> {
    /// The code glyphs alone: no decoys, tiles or noise curves.
    glyphs_only: bool,
    /// A second image on which the tiles and code glyphs are drawn again,
    /// in the same places, without anything else.
    code_layer: Option<&'a mut RgbaImage>,
}

/// Draws captchas with one font. Cheap to share (`Clone` is two `Arc` copies).
#[derive(Clone)]
pub struct Renderer {
    font: FontArc,
    /// Every drawable character rasterised at `REF_PX`.
    cache: Arc<Vec<(char, Raster)>>,
    /// Indices in `cache` of the letters and digits (decoy glyphs).
    decoys: Arc<Vec<usize>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// The built-in font, or the TTF at `CAPTCHA_FONT` when set (checked for
    /// every glyph the engine can draw).
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("CAPTCHA_FONT") {
            Ok(path) if !path.trim().is_empty() => Self::from_path(&path),
            _ => Ok(Self::builtin()),
        }
    }

    /// Loads and checks a TTF/OTF file.
    pub fn from_path(path: &str) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ConfigError::Font(format!("cannot read {path}: {e}")))?;
        Self::from_font_bytes(bytes)
            .map_err(|e| ConfigError::Font(format!("{path}: {}", font_msg(e))))
    }

    /// The built-in font.
    pub fn builtin() -> Self {
        // Checked by the unit tests (`builtin_font_has_every_glyph`).
        let font = FontArc::try_from_slice(BUILTIN_FONT).expect("built-in font parses");
        Self::with_font(font)
    }

    fn with_font(font: FontArc) -> Self {
        let cache = drawable_chars()
            .chars()
            .filter_map(|c| Some((c, rasterise(&font, c, REF_PX)?)))
            .collect::<Vec<_>>();
        let decoys = cache
            .iter()
            .enumerate()
            .filter(|(_, (c, _))| c.is_ascii_alphanumeric())
            .map(|(i, _)| i)
            .collect();
        Renderer {
            font,
            cache: Arc::new(cache),
            decoys: Arc::new(decoys),
        }
    }

    /// A font from bytes; refused when it does not parse or lacks an outline
    /// for any character the engine may draw (the message lists them).
    pub fn from_font_bytes(bytes: Vec<u8>) -> Result<Self, ConfigError> {
        let font = FontArc::try_from_vec(bytes)
            .map_err(|_| ConfigError::Font("not a TrueType/OpenType font".into()))?;
        let missing: String = drawable_chars()
            .chars()
            .filter(|&c| {
                let id = font.glyph_id(c);
                id.0 == 0 || font.outline(id).is_none()
            })
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError::Font(format!(
                "the font has no glyph for {missing:?}; it must draw every one of {:?}",
                drawable_chars()
            )));
        }
        Ok(Self::with_font(font))
    }

    /// Draws `challenge.display` as a `width` x `height` PNG with the scene's
    /// colours, font size and noise.
    pub fn render_png(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
    ) -> Result<Vec<u8>, RenderError> {
        let img = self.render_image(cfg, challenge, width, height, &mut rand::rng())?;
        encode_png(&img, cfg.background.is_none())
    }

    /// Draws the image (RGBA; opaque when the scene has a background).
    pub fn render_image(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
    ) -> Result<RgbaImage, RenderError> {
        self.draw(cfg, challenge, (width, height), rng, DrawOptions::default())
    }

    /// The raster of `c` at `px` (cached at `REF_PX`), and the factor from
    /// raster pixels to `px`.
    fn raster(&self, c: char, px: f32) -> Option<(RasterRef<'_>, f32)> {
        if px <= REF_PX * 1.25
            && let Some((_, r)) = self.cache.iter().find(|(k, _)| *k == c)
        {
            return Some((RasterRef::Cached(r), px / REF_PX));
        }
        let r = rasterise(&self.font, c, px.max(1.0))?;
        Some((RasterRef::Owned(r), 1.0))
    }

    fn draw(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        (width, height): (u32, u32),
        rng: &mut impl Rng,
        mut opts: DrawOptions<'_>,
    ) -> Result<RgbaImage, RenderError> {
        if !WIDTH_RANGE.contains(&width) || !HEIGHT_RANGE.contains(&height) {
            return Err(RenderError::Size { width, height });
        }
        let chars: Vec<char> = challenge.display.chars().collect();
        if chars.is_empty() {
            return Err(RenderError::Empty);
        }
        let decorate = !opts.glyphs_only;
        let bg = cfg.background.map(|[r, g, b]| Rgba([r, g, b, 255]));
        let mut img = RgbaImage::from_pixel(width, height, bg.unwrap_or(Rgba([0, 0, 0, 0])));
        let dark_bg = cfg.background.is_some_and(|c| luma(c) < 110.0);
        let math = cfg.math_expr;

        // Per-glyph shape, drawn before sizing (the fit scales sizes only).
        let shapes = layout::shapes(&chars, math, cfg.color, dark_bg, rng);
        let (glyphs, px) =
            layout::fit(self, &chars, &shapes, cfg.font_size, (width, height), math)?;
        let glyphs = layout::place(glyphs, (width, height), math, rng);

        if decorate {
            self.draw_decoys(&mut img, cfg, px, dark_bg, rng);
        }
        // Two glyphs (never side by side) on a tile, striped in the
        // background colour and the tile's opposite on the blue-yellow axis
        // at the tile's luma: whole to the eye (also to red-green colour-blind
        // people), every other stripe gone in grey.
        let tiled = if decorate {
            pick_tiles(glyphs.len(), rng)
        } else {
            vec![false; glyphs.len()]
        };
        let mut styled = shapes.clone();
        for (i, _) in tiled.iter().enumerate().filter(|(_, t)| **t) {
            let (tile, iso) = blue_yellow_pair(rng, TILE_LUMA);
            draw_tile(&mut img, &glyphs[i], tile);
            if let Some(layer) = opts.code_layer.as_deref_mut() {
                draw_tile(layer, &glyphs[i], tile);
            }
            styled[i].colour = iso;
            styled[i].stripes = Some(cfg.background.unwrap_or([255, 255, 255]));
        }
        // Tiled glyphs first; then each other glyph, cut out of a
        // neighbouring tile by a halo in the background colour so that it
        // never lies dark on the mid-grey tile.
        for ((g, s), _) in glyphs.iter().zip(&styled).zip(&tiled).filter(|(_, t)| **t) {
            draw_glyph(&mut img, g, s, 1.0);
            if let Some(layer) = opts.code_layer.as_deref_mut() {
                draw_glyph(layer, g, s, 1.0);
            }
        }
        let halo_colour = cfg.background.unwrap_or([255, 255, 255]);
        for (i, (g, s)) in glyphs.iter().zip(&styled).enumerate() {
            if tiled[i] {
                continue;
            }
            let near_tile = (i > 0 && tiled[i - 1]) || tiled.get(i + 1).copied().unwrap_or(false);
            let s = Shape {
                halo: near_tile.then_some(halo_colour),
                ..*s
            };
            draw_glyph(&mut img, g, &s, 1.0);
            if let Some(layer) = opts.code_layer.as_deref_mut() {
                draw_glyph(layer, g, &s, 1.0);
            }
        }
        // Noise curves over everything; near a tiled glyph a curve takes
        // that glyph's tile-luma colour, so that on the tile it cuts only the
        // glyph's light half in grey and stays a thin coloured line to the eye.
        if decorate {
            noise::draw_curves(&mut img, cfg.noise, &glyphs, &styled, rng);
        }
        Ok(img)
    }

    /// Scaled ascent of the font at `px` (tests).
    pub fn ascent(&self, px: f32) -> f32 {
        self.font.as_scaled(PxScale::from(px)).ascent()
    }
}

fn font_msg(e: ConfigError) -> String {
    match e {
        ConfigError::Font(m) => m,
        other => other.to_string(),
    }
}

/// PNG with fast compression: RGB when opaque, RGBA when transparent.
pub fn encode_png(img: &RgbaImage, transparent: bool) -> Result<Vec<u8>, RenderError> {
    let (w, h) = img.dimensions();
    let mut out = Vec::with_capacity((w * h) as usize);
    let enc = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, PNG_FILTER);
    let res = if transparent {
        enc.write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
    } else {
        let raw = img.as_raw();
        let mut rgb = vec![0u8; raw.len() / 4 * 3];
        for (d, s) in rgb.chunks_exact_mut(3).zip(raw.chunks_exact(4)) {
            d.copy_from_slice(&s[..3]);
        }
        enc.write_image(&rgb, w, h, ExtendedColorType::Rgb8)
    };
    res.map_err(|e| RenderError::Encode(e.to_string()))?;
    Ok(out)
}
