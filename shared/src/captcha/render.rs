//! PNG rendering of a challenge with `image`, `imageproc` and `ab_glyph`.
//!
//! Every drawable glyph is rasterised once, upright, when the renderer is
//! built (with a dilated copy for halos). A captcha then draws each glyph by
//! inverse mapping only the pixels of its own box through one transform: its
//! sine warp, rotation, shear and stretch (bilinear sampling). Glyphs are
//! large (the tallest fills most of the height), solid, each in its own dark
//! colour, and kept apart so that none hides another. Two glyphs (one in a
//! code of one or two), never side by side, sit on a rounded tile, blue or
//! amber, and are drawn in fine stripes: one stripe in the background
//! colour, the next in the other of blue and amber at the tile's luma. The
//! eye joins the stripes into the whole glyph (also for red-green
//! colour-blind people: blue-yellow is the axis they keep), but in the
//! greyscale that OCR reads every other stripe vanishes into the tile.
//! Glyphs next to a tile get a halo in the background colour. Under the glyphs
//! lie faint small decoy glyphs; over them run thin noise curves (imageproc's
//! antialiased lines) that take the colour of the glyph they cross (the tile-
//! luma colour near a tiled glyph). The layout is fitted so that every glyph
//! and tile, transformed and warped, lies inside the image at any allowed size.

use std::sync::Arc;

use ab_glyph::{Font, FontArc, PxScale, ScaleFont};
use base64::Engine;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Rgba, RgbaImage};
use rand::Rng;

use super::code::{Challenge, drawable_chars};
use super::config::{HEIGHT_RANGE, SceneConfig, WIDTH_RANGE};
use crate::config::ConfigError;

/// The default font (a subset of DejaVu Sans Bold, see fonts/LICENSE).
pub const BUILTIN_FONT: &[u8] = include_bytes!("../../../fonts/DejaVuSans-Bold-captcha.ttf");

/// Pixel size at which glyphs are rasterised once and cached; larger glyphs
/// are rasterised at their own size for each captcha.
const REF_PX: f32 = 64.0;
/// Width of the halo that cuts a glyph out of a neighbouring tile, as a
/// fraction of the em size.
const HALO_WIDTH: f32 = 0.035;
/// Glyphs on a tile in one captcha (fewer when the code is too short to keep
/// them apart). Measured with scripts/ocr_rate.py (500 default captchas,
/// half-glyph splits in place of stripes): one tile 13.4 % solved, two
/// 2.8 %, two with every other glyph plain 0.8 %. Hollow and split styles
/// on the other glyphs did not hinder the solver, only people.
const TILES: usize = 2;
/// Period of a tiled glyph's stripes, as a fraction of its raster height,
/// and the share of each period drawn light. Measured (as above, on stripes
/// with a wave of their own): periods 0.10, 0.12, 0.15, 0.18, 0.25 gave
/// 17.4, 12.2, 4.0, 2.6, 0.6 % solved; finer stripes read better, coarser
/// ones cut glyphs into pieces. A light share of 0.6 raised 0.15 to 10.2 %.
/// Straight stripes (bent only by the glyph's warp) read as well, gave
/// 3.4 %, and save the wave's sine per pixel (about 12 µs a captcha).
const STRIPE_PERIOD: f32 = 0.15;
const LIGHT_STRIPE: f32 = 0.5;
/// Luma (BT.601, as OCR greyscale conversions use) of a tile and of the
/// glyph half drawn on it in the opposite colour.
const TILE_LUMA: f32 = 118.0;

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
        self.draw(cfg, challenge, (width, height), rng, true, None)
    }

    /// The glyphs alone, without decoys and noise (tests of the layout).
    #[cfg(test)]
    fn render_glyphs_only(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
    ) -> Result<RgbaImage, RenderError> {
        self.draw(cfg, challenge, (width, height), rng, false, None)
    }

    /// The full image, and on a second transparent image the tiles and code
    /// glyphs alone, drawn in the same places (tests of the layout).
    #[cfg(test)]
    fn render_with_code_layer(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
    ) -> Result<(RgbaImage, RgbaImage), RenderError> {
        let mut layer = RgbaImage::new(width, height);
        let img = self.draw(cfg, challenge, (width, height), rng, true, Some(&mut layer))?;
        Ok((img, layer))
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
        decorate: bool,
        mut code_layer: Option<&mut RgbaImage>,
    ) -> Result<RgbaImage, RenderError> {
        if !WIDTH_RANGE.contains(&width) || !HEIGHT_RANGE.contains(&height) {
            return Err(RenderError::Size { width, height });
        }
        let chars: Vec<char> = challenge.display.chars().collect();
        if chars.is_empty() {
            return Err(RenderError::Empty);
        }
        let bg = cfg.background.map(|[r, g, b]| Rgba([r, g, b, 255]));
        let mut img = RgbaImage::from_pixel(width, height, bg.unwrap_or(Rgba([0, 0, 0, 0])));
        let dark_bg = cfg.background.is_some_and(|c| luma(c) < 110.0);
        let (w, h) = (width as f32, height as f32);
        let math = cfg.math_expr;

        // Per-glyph shape, drawn before sizing (the fit scales sizes only).
        let max_rot: f32 = if math { 0.18 } else { 0.3 };
        let hue0 = rng.random_range(0.0f32..360.0);
        let n = chars.len() as f32;
        let shapes: Vec<Shape> = chars
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let rot = rng.random_range(-max_rot..max_rot);
                let shear = rng.random_range(-0.15f32..0.15);
                let sx = rng.random_range(0.9f32..1.1);
                let sy = rng.random_range(0.95f32..1.1);
                let (s, c) = rot.sin_cos();
                // M = R(rot) * [[sx, shear], [0, sy]]
                let m = [c * sx, c * shear - s * sy, s * sx, s * shear + c * sy];
                // Hues spread around the wheel, so neighbours differ.
                let hue = hue0 + 360.0 * i as f32 / n + rng.random_range(-25.0f32..25.0);
                Shape {
                    m,
                    size: rng.random_range(0.93f32..1.07),
                    colour: glyph_colour(rng, cfg.color, dark_bg, hue),
                    stripes: None,
                    halo: None,
                    stripe_dir: [
                        rng.random_range(-1.0f32..1.0),
                        rng.random_range(-1.0f32..1.0),
                        rng.random_range(0.0f32..1.0),
                    ],
                    warp: [
                        rng.random_range(0.035f32..0.06) * 1.0,
                        rng.random_range(0.6f32..1.0),
                        phase(rng),
                        rng.random_range(0.7f32..1.2),
                        phase(rng),
                    ],
                }
            })
            .collect();

        // Size: start large (glyphs should fill the height) and fit.
        let margin = 1.5f32;
        let pack = if math { 0.86 } else { 0.8 };
        let mut px = cfg.font_size.max(h * 1.05);
        let mut glyphs: Vec<Placed> = Vec::with_capacity(chars.len());
        for _ in 0..4 {
            glyphs.clear();
            for (c, s) in chars.iter().zip(&shapes) {
                let Some((raster, k)) = self.raster(*c, px * s.size) else {
                    continue;
                };
                glyphs.push(Placed::new(raster, k, s, px * s.size));
            }
            if glyphs.is_empty() {
                return Err(RenderError::Empty);
            }
            let (total_w, max_h) = extent(&glyphs, pack);
            let avail_w = w - 2.0 * margin;
            let avail_h = h - 2.0 * margin;
            let k = (avail_w / total_w).min(avail_h / max_h);
            if k >= 1.0 {
                break;
            }
            px *= k * 0.985;
        }

        // Place: packed left to right with extra gaps when there is room, the
        // block centred with jitter, each glyph at a random height inside.
        let (total_w, _) = extent(&glyphs, pack);
        let mut slack = (w - 2.0 * margin - total_w).max(0.0);
        let gaps = glyphs.len().saturating_sub(1) as f32;
        let avg_w = total_w / glyphs.len() as f32;
        let gap = if gaps > 0.0 {
            (slack * 0.5 / gaps).min(avg_w * 0.25)
        } else {
            0.0
        };
        slack -= gap * gaps;
        let mut x = margin + slack * rng.random_range(0.3f32..0.7) + glyphs[0].ex;
        for i in 0..glyphs.len() {
            if i > 0 {
                x += (glyphs[i - 1].ex + glyphs[i].ex) * pack + gap;
            }
            let g = &mut glyphs[i];
            g.cx = x.clamp(margin + g.ex, (w - margin - g.ex).max(margin + g.ex));
            let lo = margin + g.ey;
            let hi = (h - margin - g.ey).max(lo);
            g.cy = random_in(rng, lo, hi);
        }

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
            if let Some(layer) = code_layer.as_deref_mut() {
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
            if let Some(layer) = code_layer.as_deref_mut() {
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
            if let Some(layer) = code_layer.as_deref_mut() {
                draw_glyph(layer, g, &s, 1.0);
            }
        }
        // Noise curves over everything; near a tiled glyph a curve takes
        // that glyph's tile-luma colour, so that on the tile it cuts only the
        // glyph's light half in grey and stays a thin coloured line to the eye.
        if decorate {
            draw_noise(&mut img, cfg.noise, &glyphs, &styled, rng);
        }
        Ok(img)
    }

    /// Faint small glyphs under the code, in glyph-like colours.
    fn draw_decoys(
        &self,
        img: &mut RgbaImage,
        cfg: &SceneConfig,
        px: f32,
        dark_bg: bool,
        rng: &mut impl Rng,
    ) {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let count = (2.0 + (w * h / 2500.0).min(16.0)) as usize;
        if self.decoys.is_empty() {
            return;
        }
        for _ in 0..count {
            let c = self.cache[self.decoys[rng.random_range(0..self.decoys.len())]].0;
            let rot = rng.random_range(-0.9f32..0.9);
            let (s, co) = rot.sin_cos();
            let hue = rng.random_range(0.0..360.0);
            let shape = Shape {
                m: [co, -s, s, co],
                size: 1.0,
                colour: glyph_colour(rng, cfg.color, dark_bg, hue),
                stripes: None,
                stripe_dir: [0.0; 3],
                halo: None,
                warp: [0.0, 1.0, 0.0, 1.0, 0.0],
            };
            let ds = 0.37;
            let size = px * rng.random_range(ds * 0.8..ds * 1.2);
            let Some((raster, k)) = self.raster(c, size) else {
                continue;
            };
            let mut g = Placed::new(raster, k, &shape, size);
            g.cx = rng.random_range(0.0..w);
            g.cy = rng.random_range(0.0..h);
            let da = 0.28;
            draw_glyph(img, &g, &shape, rng.random_range(da * 0.8..da * 1.2));
        }
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

/// Coverage of one upright glyph and its dilation (for halos), with a zero
/// border of `pad` pixels.
struct Raster {
    cov: Vec<f32>,
    outer: Vec<f32>,
    stride: usize,
    rows: usize,
    pad: usize,
}

enum RasterRef<'a> {
    Cached(&'a Raster),
    Owned(Raster),
}

impl RasterRef<'_> {
    fn get(&self) -> &Raster {
        match self {
            RasterRef::Cached(r) => r,
            RasterRef::Owned(r) => r,
        }
    }
}

fn rasterise(font: &FontArc, c: char, px: f32) -> Option<Raster> {
    let glyph = font.glyph_id(c).with_scale(PxScale::from(px));
    let outlined = font.outline_glyph(glyph)?;
    let b = outlined.px_bounds();
    let (bw, bh) = (b.width() as usize, b.height() as usize);
    let halo = (px * HALO_WIDTH).round().max(1.0) as usize;
    let pad = 1 + halo;
    let (stride, rows) = (bw + 2 * pad, bh + 2 * pad);
    let mut cov = vec![0f32; stride * rows];
    outlined.draw(|x, y, v| {
        if let Some(p) = cov.get_mut((y as usize + pad) * stride + x as usize + pad) {
            *p = v.min(1.0);
        }
    });
    let outer = dilate(&cov, stride, rows, halo);
    Some(Raster {
        cov,
        outer,
        stride,
        rows,
        pad,
    })
}

/// Dilation by a square of radius `r` (separable).
fn dilate(src: &[f32], stride: usize, rows: usize, r: usize) -> Vec<f32> {
    let mut tmp = vec![0f32; src.len()];
    for y in 0..rows {
        for x in 0..stride {
            let (a, b) = (x.saturating_sub(r), (x + r).min(stride - 1));
            tmp[y * stride + x] = src[y * stride + a..=y * stride + b]
                .iter()
                .fold(0.0, |m: f32, &v| m.max(v));
        }
    }
    let mut out = vec![0f32; src.len()];
    for y in 0..rows {
        let (a, b) = (y.saturating_sub(r), (y + r).min(rows - 1));
        for x in 0..stride {
            out[y * stride + x] = (a..=b).fold(0.0, |m: f32, yy| m.max(tmp[yy * stride + x]));
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Shape {
    /// Forward 2x2 transform, row-major.
    m: [f32; 4],
    size: f32,
    colour: [u8; 3],
    /// Light stripe colour: `Some` for a glyph on a tile, striped across in
    /// it and `colour`.
    stripes: Option<[u8; 3]>,
    /// Stripes across the upright glyph: their normal (x, y) and offset (a
    /// fraction of a period); the glyph's own warp bends them.
    stripe_dir: [f32; 3],
    /// Halo colour: the dilated glyph drawn under it, only over pixels
    /// already drawn.
    halo: Option<[u8; 3]>,
    /// Warp: amplitude and period (fractions of the em) and phase of the
    /// horizontal shift by row, then period and phase of the vertical shift
    /// by column.
    warp: [f32; 5],
}

/// A glyph ready to draw: raster, inverse transform, box and position.
struct Placed<'a> {
    raster: RasterRef<'a>,
    /// Image offset from the centre -> raster coordinates.
    inv: [f32; 4],
    /// Raster centre.
    rc: (f32, f32),
    /// Half extents of the transformed, warped glyph box.
    ex: f32,
    ey: f32,
    /// Warp amplitude (px) and angular frequencies (rad per px).
    amp: f32,
    fy: f32,
    fx: f32,
    cx: f32,
    cy: f32,
}

impl<'a> Placed<'a> {
    fn new(raster: RasterRef<'a>, k: f32, s: &Shape, px: f32) -> Self {
        let r = raster.get();
        let (hw, hh) = (
            (r.stride - 2 * r.pad) as f32 / 2.0,
            (r.rows - 2 * r.pad) as f32 / 2.0,
        );
        let pad = r.pad as f32;
        let m = s.m.map(|v| v * k);
        let amp = s.warp[0] * px;
        let ex = m[0].abs() * hw + m[1].abs() * hh + amp;
        let ey = m[2].abs() * hw + m[3].abs() * hh + amp;
        let det = m[0] * m[3] - m[1] * m[2];
        let inv = [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det];
        let tau = std::f32::consts::TAU;
        Placed {
            raster,
            inv,
            rc: (hw + pad, hh + pad),
            ex,
            ey,
            amp,
            fy: tau / (s.warp[1] * px).max(1.0),
            fx: tau / (s.warp[3] * px).max(1.0),
            cx: 0.0,
            cy: 0.0,
        }
    }
}

/// Width of the packed row and height of the tallest glyph.
fn extent(glyphs: &[Placed], pack: f32) -> (f32, f32) {
    let Some(first) = glyphs.first() else {
        return (0.0, 0.0);
    };
    let mut w = first.ex + glyphs.last().map_or(0.0, |g| g.ex);
    for pair in glyphs.windows(2) {
        w += (pair[0].ex + pair[1].ex) * pack;
    }
    let h = glyphs.iter().fold(0f32, |m, g| m.max(2.0 * g.ey));
    (w, h)
}

fn phase(rng: &mut impl Rng) -> f32 {
    rng.random_range(0.0..std::f32::consts::TAU)
}

fn random_in(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

fn luma([r, g, b]: [u8; 3]) -> f32 {
    0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32
}

/// A glyph colour: a saturated colour of the given hue (or a dark grey without
/// `color`), dark on light backgrounds and light on dark ones.
fn glyph_colour(rng: &mut impl Rng, color: bool, dark_bg: bool, hue: f32) -> [u8; 3] {
    let (l_lo, l_hi) = if dark_bg { (0.68, 0.85) } else { (0.2, 0.4) };
    let l = rng.random_range(l_lo..l_hi);
    if !color {
        let v = (l * 255.0) as u8;
        return [v, v, v];
    }
    let s = rng.random_range(0.6f32..0.95);
    let c = hsl(hue.rem_euclid(360.0), s, l);
    // Yellows and cyans are bright at any lightness: pull luma into range.
    let y = luma(c).max(1.0);
    let k = if dark_bg {
        (150.0 / y).max(1.0)
    } else {
        (110.0 / y).min(1.0)
    };
    c.map(|v| (v as f32 * k).round().clamp(0.0, 255.0) as u8)
}

/// Which of `n` glyphs sit on a tile: [`TILES`] of them, or as many as fit
/// with none side by side, every such choice equally likely.
fn pick_tiles(n: usize, rng: &mut impl Rng) -> Vec<bool> {
    let count = TILES.min(n.div_ceil(2));
    // Choosing `count` of `n - count + 1` slots and shifting the k-th
    // (in order) right by k leaves a gap between every two.
    let mut slots = rand::seq::index::sample(rng, n + 1 - count, count).into_vec();
    slots.sort_unstable();
    let mut tiled = vec![false; n];
    for (k, slot) in slots.into_iter().enumerate() {
        tiled[slot + k] = true;
    }
    tiled
}

/// A tile colour and a glyph colour of equal luma `l`, one amber and one
/// blue (either way round), both of strong chroma.
fn blue_yellow_pair(rng: &mut impl Rng, l: f32) -> ([u8; 3], [u8; 3]) {
    let amber = match_luma(hsl(rng.random_range(28.0f32..46.0), 1.0, 0.5), l);
    let blue = match_luma(hsl(rng.random_range(205.0f32..222.0), 1.0, 0.5), l);
    if rng.random_bool(0.5) {
        (amber, blue)
    } else {
        (blue, amber)
    }
}

/// `c` moved to luma `l`: darkened, or mixed with white.
fn match_luma(c: [u8; 3], l: f32) -> [u8; 3] {
    let y = luma(c).max(1.0);
    if y >= l {
        c.map(|v| (v as f32 * l / y).round() as u8)
    } else {
        let t = (l - y) / (255.0 - y).max(1.0);
        c.map(|v| (v as f32 + (255.0 - v as f32) * t).round() as u8)
    }
}

fn hsl(h: f32, s: f32, l: f32) -> [u8; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [to(r), to(g), to(b)]
}

/// Blends `colour` at coverage `a` over the pixel at byte offset `i`.
#[inline(always)]
fn blend(buf: &mut [u8], i: usize, colour: [u8; 3], a: f32) {
    if a <= 0.0 {
        return;
    }
    let px = &mut buf[i..i + 4];
    if px[3] == 255 {
        // Opaque destination: integer mix with an 8-bit weight.
        let w = (a.min(1.0) * 256.0) as i32;
        for c in 0..3 {
            let d = px[c] as i32;
            px[c] = (d + (((colour[c] as i32 - d) * w + 128) >> 8)) as u8;
        }
        return;
    }
    blend_translucent(px, colour, a.min(1.0));
}

/// `blend` over a pixel that is not opaque.
#[inline(never)]
fn blend_translucent(px: &mut [u8], colour: [u8; 3], a: f32) {
    let da = px[3] as f32 * (1.0 / 255.0);
    let out_a = a + da * (1.0 - a);
    if out_a <= 0.0 {
        return;
    }
    let k = da * (1.0 - a);
    for c in 0..3 {
        let v = (colour[c] as f32 * a + px[c] as f32 * k) / out_a;
        px[c] = v.round().clamp(0.0, 255.0) as u8;
    }
    px[3] = (out_a * 255.0).round() as u8;
}

#[inline(always)]
fn bilinear(map: &[f32], stride: usize, o: usize, fu: f32, fv: f32) -> f32 {
    let (t, b) = (&map[o..o + 2], &map[o + stride..o + stride + 2]);
    let top = t[0] + (t[1] - t[0]) * fu;
    let bot = b[0] + (b[1] - b[0]) * fu;
    top + (bot - top) * fv
}

/// Draws one placed glyph at opacity `alpha`.
fn draw_glyph(img: &mut RgbaImage, g: &Placed, s: &Shape, alpha: f32) {
    let (width, height) = img.dimensions();
    let r = g.raster.get();
    let x0 = (g.cx - g.ex).floor().max(0.0) as u32;
    let x1 = ((g.cx + g.ex).ceil().max(0.0) as u32).min(width);
    let y0 = (g.cy - g.ey).floor().max(0.0) as u32;
    let y1 = ((g.cy + g.ey).ceil().max(0.0) as u32).min(height);
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    // Vertical shift by column, precomputed once per glyph.
    let dy: Vec<f32> = (x0..x1)
        .map(|x| g.amp * ((x as f32 + 0.5 - g.cx) * g.fx + s.warp[4]).sin())
        .collect();
    let inv = g.inv;
    let (stride, rows) = (r.stride, r.rows);
    let (rcx, rcy) = g.rc;
    // Stripe phase = u * su + v * sv + s0, in periods.
    let [nx, ny, offset] = s.stripe_dir;
    let stripe_f = 1.0 / ((nx * nx + ny * ny).sqrt().max(1e-3) * STRIPE_PERIOD * rows as f32);
    let (su, sv) = (nx * stripe_f, ny * stripe_f);
    let s0 = offset - rcx * su - rcy * sv;
    let buf: &mut [u8] = img.as_mut();
    for y in y0..y1 {
        let py0 = y as f32 + 0.5 - g.cy;
        let dx = g.amp * (py0 * g.fy + s.warp[2]).sin();
        // Columns whose sample can fall inside the raster (whatever the
        // vertical warp): u and v are affine in t = x + 0.5 - cx - dx.
        let (mut t0, mut t1) = (f32::NEG_INFINITY, f32::INFINITY);
        for (a, b, room, n) in [
            (
                inv[0],
                inv[1] * py0 + rcx - 0.5,
                inv[1].abs() * g.amp,
                stride,
            ),
            (inv[2], inv[3] * py0 + rcy - 0.5, inv[3].abs() * g.amp, rows),
        ] {
            let (lo, hi) = (-room, (n - 1) as f32 + room);
            if a.abs() < 1e-6 {
                if b < lo || b > hi {
                    t1 = t0;
                }
                continue;
            }
            let (p, q) = ((lo - b) / a, (hi - b) / a);
            t0 = t0.max(p.min(q));
            t1 = t1.min(p.max(q));
        }
        if t0 > t1 {
            continue;
        }
        let off = g.cx + dx - 0.5;
        let xa = ((t0 + off).floor().max(x0 as f32) as u32).min(x1);
        let xb = ((t1 + off).ceil() as i64 + 1).clamp(xa as i64, x1 as i64) as u32;
        for x in xa..xb {
            let j = (x - x0) as usize;
            let px = x as f32 + 0.5 - g.cx - dx;
            let py = py0 - dy[j];
            let u = inv[0] * px + inv[1] * py + rcx - 0.5;
            let v = inv[2] * px + inv[3] * py + rcy - 0.5;
            if u < 0.0 || v < 0.0 {
                continue;
            }
            let (iu, iv) = (u as usize, v as usize);
            if iu + 1 >= stride || iv + 1 >= rows {
                continue;
            }
            let (fu, fv) = (u - iu as f32, v - iv as f32);
            let o = iv * stride + iu;
            let i = ((y * width + x) * 4) as usize;
            if let Some(halo) = s.halo
                && buf[i + 3] > 0
            {
                // Same pass: the halo under the glyph, pixel by pixel.
                blend(buf, i, halo, bilinear(&r.outer, stride, o, fu, fv) * alpha);
            }
            let a = bilinear(&r.cov, stride, o, fu, fv);
            if a <= 0.003 {
                continue;
            }
            let mut colour = s.colour;
            if let Some(light) = s.stripes
                && (u * su + v * sv + s0).rem_euclid(1.0) < LIGHT_STRIPE
            {
                colour = light;
            }
            blend(buf, i, colour, a * alpha);
        }
    }
}

fn draw_tile(img: &mut RgbaImage, g: &Placed, colour: [u8; 3]) {
    let (width, height) = img.dimensions();
    let buf: &mut [u8] = img.as_mut();
    let (ex, ey) = (g.ex, g.ey);
    let r = ex.min(ey) * 0.4;
    let x0 = (g.cx - ex - 1.0).floor().max(0.0) as u32;
    let x1 = ((g.cx + ex + 1.0).ceil().max(0.0) as u32).min(width);
    let y0 = (g.cy - ey - 1.0).floor().max(0.0) as u32;
    let y1 = ((g.cy + ey + 1.0).ceil().max(0.0) as u32).min(height);
    for y in y0..y1 {
        for x in x0..x1 {
            let i = ((y * width + x) * 4) as usize;
            let qx = (x as f32 + 0.5 - g.cx).abs() - (ex - r);
            let qy = (y as f32 + 0.5 - g.cy).abs() - (ey - r);
            if qx <= 0.0 && qy <= 0.0 && buf[i + 3] == 255 && -qx.max(qy) >= 0.5 - r {
                // Well inside the straight edges: opaque fill, no distance.
                buf[i..i + 3].copy_from_slice(&colour);
                continue;
            }
            let d = if qx <= 0.0 || qy <= 0.0 {
                qx.max(qy) - r
            } else {
                (qx * qx + qy * qy).sqrt() - r
            };
            blend(buf, i, colour, (0.5 - d).clamp(0.0, 1.0));
        }
    }
}

/// Thin noise curves left to right across the code; each stretch of a curve
/// takes the colour of the glyph nearest to it.
fn draw_noise(
    img: &mut RgbaImage,
    count: u32,
    glyphs: &[Placed],
    shapes: &[Shape],
    rng: &mut impl Rng,
) {
    const SEGMENTS: usize = 18;
    let (w, h) = (img.width() as f32, img.height() as f32);
    let colour_at = |x: f32| {
        let i = glyphs
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1.cx - x).abs().total_cmp(&(b.1.cx - x).abs()))
            .map_or(0, |(i, _)| i);
        shapes[i].colour
    };
    for _ in 0..count {
        let y = |rng: &mut _| random_in(rng, h * 0.2, h * 0.8);
        let p = [
            (random_in(rng, 0.0, w * 0.15), y(rng)),
            (
                random_in(rng, w * 0.2, w * 0.5),
                random_in(rng, -h * 0.2, h * 1.2),
            ),
            (
                random_in(rng, w * 0.5, w * 0.8),
                random_in(rng, -h * 0.2, h * 1.2),
            ),
            (random_in(rng, w * 0.85, w), y(rng)),
        ];
        let at = |t: f32| {
            let u = 1.0 - t;
            let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            (
                a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0,
                a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1,
            )
        };
        let double = rng.random_bool(0.4);
        let mut prev = at(0.0);
        for i in 1..=SEGMENTS {
            let next = at(i as f32 / SEGMENTS as f32);
            let [r, g, b] = colour_at((prev.0 + next.0) / 2.0);
            let (a, bb) = (
                (prev.0.round() as i32, prev.1.round() as i32),
                (next.0.round() as i32, next.1.round() as i32),
            );
            imageproc::drawing::draw_antialiased_line_segment_mut(
                img,
                a,
                bb,
                Rgba([r, g, b, 255]),
                over,
            );
            if double {
                imageproc::drawing::draw_antialiased_line_segment_mut(
                    img,
                    (a.0, a.1 + 1),
                    (bb.0, bb.1 + 1),
                    Rgba([r, g, b, 255]),
                    over,
                );
            }
            prev = next;
        }
    }
}

/// Source-over blending for imageproc's antialiased lines (`weight` is the
/// line's coverage).
fn over(line: Rgba<u8>, under: Rgba<u8>, weight: f32) -> Rgba<u8> {
    let mut px = under.0;
    blend(&mut px, 0, [line[0], line[1], line[2]], weight);
    Rgba(px)
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

#[cfg(test)]
mod golden;

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::captcha::code::new_challenge;

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
                    let opaque_tile = layer.pixels().filter(|p| p[3] == 255).any(|p| {
                        (luma([p[0], p[1], p[2]]) - TILE_LUMA).abs() < 2.0 && p[0] != p[1]
                    });
                    with_tiles += opaque_tile as usize;
                }
            }
        }
        assert!(with_tiles * 2 > total, "tiles in {with_tiles} of {total}");
    }

    #[test]
    fn tiles_are_two_never_side_by_side_and_every_choice_occurs() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 1..=8 {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..400 {
                let tiled = pick_tiles(n, &mut rng);
                assert_eq!(tiled.len(), n);
                let count = tiled.iter().filter(|t| **t).count();
                assert_eq!(count, TILES.min(n.div_ceil(2)), "{n} glyphs: {tiled:?}");
                assert!(
                    !tiled.windows(2).any(|w| w[0] && w[1]),
                    "side by side: {tiled:?}"
                );
                seen.insert(tiled);
            }
            // Non-adjacent pairs among n: C(n - 1, 2); one tile: n choices.
            let choices = if n >= 3 { (n - 1) * (n - 2) / 2 } else { n };
            assert_eq!(seen.len(), choices, "{n} glyphs");
        }
    }

    #[test]
    fn tile_pairs_are_isoluminant_blue_and_amber() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let (tile, glyph) = blue_yellow_pair(&mut rng, TILE_LUMA);
            assert!((luma(tile) - luma(glyph)).abs() < 2.0, "{tile:?} {glyph:?}");
            let (blue, amber) = if tile[2] > tile[0] {
                (tile, glyph)
            } else {
                (glyph, tile)
            };
            // Blue: blue channel dominant; amber: red > green > blue. Both far
            // apart on the blue-yellow axis, which colour-blind eyes keep.
            assert!(blue[2] as i32 - blue[0] as i32 > 150, "{blue:?}");
            assert!(
                amber[0] > amber[1]
                    && amber[1] > amber[2]
                    && amber[0] as i32 - amber[2] as i32 > 120,
                "{amber:?}"
            );
        }
    }

    #[test]
    fn font_check_names_missing_glyphs() {
        let err = Renderer::from_font_bytes(b"not a font".to_vec()).unwrap_err();
        assert!(matches!(err, ConfigError::Font(ref m) if m.contains("not a TrueType")));
        // A real font that lacks the letters (a digits-only subset of the
        // built-in font, made with pyftsubset for this test).
        let digits_only = include_bytes!("../../../fonts/testdata/digits-only.ttf");
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

    #[test]
    fn colours_contrast_with_the_background() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let hue = rng.random_range(0.0..360.0);
            assert!(luma(glyph_colour(&mut rng, true, false, hue)) < 150.0);
            assert!(luma(glyph_colour(&mut rng, true, true, hue)) > 120.0);
            let [r, g, b] = glyph_colour(&mut rng, false, false, hue);
            assert!(r == g && g == b && r < 120);
        }
    }
}
