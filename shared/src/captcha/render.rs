//! PNG rendering of a challenge with `image`, `imageproc` and `ab_glyph`.
//!
//! Each glyph is rasterised upright by ab_glyph, then drawn by inverse mapping
//! every destination pixel through one transform: a sine warp of the whole
//! image, then the glyph's own rotation, shear and stretch (bilinear
//! sampling). Glyphs are packed so that they touch or overlap a little, each
//! in its own colour; noise curves in the glyphs' colours and about as thick
//! as thin glyph strokes cross them. The layout is fitted so that every glyph,
//! transformed and warped, lies inside the image at any allowed size.

use ab_glyph::{Font, FontArc, PxScale, ScaleFont};
use base64::Engine;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Rgba, RgbaImage};
use rand::Rng;

use super::code::{Challenge, drawable_chars};
use super::config::{ConfigError, HEIGHT_RANGE, SceneConfig, WIDTH_RANGE};

/// The default font (a subset of DejaVu Sans Bold, see fonts/LICENSE).
pub const BUILTIN_FONT: &[u8] = include_bytes!("../../../fonts/DejaVuSans-Bold-captcha.ttf");

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

/// Draws captchas with one font. Cheap to share (`Clone` is an `Arc` copy).
#[derive(Clone)]
pub struct Renderer {
    font: FontArc,
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
        Renderer { font }
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
        Ok(Renderer { font })
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
        self.draw(cfg, challenge, width, height, rng, true)
    }

    /// The glyphs alone, without band and noise (tests of the layout).
    #[cfg(test)]
    fn render_glyphs_only(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
    ) -> Result<RgbaImage, RenderError> {
        self.draw(cfg, challenge, width, height, rng, false)
    }

    fn draw(
        &self,
        cfg: &SceneConfig,
        challenge: &Challenge,
        width: u32,
        height: u32,
        rng: &mut impl Rng,
        decorate: bool,
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

        let w = width as f32;
        let h = height as f32;
        let math = cfg.math_expr;
        let band_hue = rng.random_range(0.0f32..360.0);
        let band = Band::new(rng, width, height, cfg, dark_bg, band_hue);
        let band = if decorate {
            band.fill(&mut img);
            band
        } else {
            band.empty()
        };
        // Glyph hues at least 80 degrees from the band's, so a glyph stays
        // distinct where it meets the band.
        let palette: Vec<[u8; 3]> = (0..chars.len())
            .map(|_| {
                let hue = band_hue + rng.random_range(80.0f32..280.0);
                glyph_colour(rng, cfg.color, dark_bg, hue)
            })
            .collect();
        // Whole-image sine warp, precomputed per row and column.
        let amp = (h * 0.055).clamp(0.8, 5.0);
        let (fx, px) = (
            rng.random_range(1.5..2.6) * std::f32::consts::TAU / w,
            phase(rng),
        );
        let (fy, py) = (
            rng.random_range(0.6..1.2) * std::f32::consts::TAU / h,
            phase(rng),
        );
        let dy_of_x: Vec<f32> = (0..width)
            .map(|x| amp * (x as f32 * fx + px).sin())
            .collect();
        let dx_of_y: Vec<f32> = (0..height)
            .map(|y| amp * 0.6 * (y as f32 * fy + py).sin())
            .collect();

        // Per-glyph transforms, fixed before fitting (the fit scales sizes only).
        let max_rot: f32 = if math { 0.2 } else { 0.32 };
        let params: Vec<GlyphParams> = chars
            .iter()
            .map(|_| {
                let rot = rng.random_range(-max_rot..max_rot);
                let shear = rng.random_range(-0.22f32..0.22);
                let sx = rng.random_range(0.82f32..1.08);
                let sy = rng.random_range(0.9f32..1.12);
                let (s, c) = rot.sin_cos();
                // M = R(rot) * [[sx, shear], [0, sy]]
                let m = [c * sx, c * shear - s * sy, s * sx, s * shear + c * sy];
                GlyphParams {
                    m,
                    size: rng.random_range(0.9f32..1.1),
                }
            })
            .collect();

        let margin = 1.0f32;
        let pack = if math { 0.9 } else { 0.84 };
        let mut px_size = cfg.font_size;
        let mut glyphs = Vec::new();
        for _ in 0..6 {
            glyphs = self.rasterise(&chars, &params, px_size);
            let (total_w, max_h) = extent(&glyphs, pack);
            let avail_w = w - 2.0 * (margin + amp * 0.6) - 1.0;
            let avail_h = h - 2.0 * (margin + amp) - 1.0;
            let k = (avail_w / total_w).min(avail_h / max_h);
            if k >= 1.0 {
                break;
            }
            px_size *= k * 0.97;
        }
        if glyphs.is_empty() {
            return Err(RenderError::Empty);
        }

        // Place: centres packed left to right, the block centred with jitter,
        // each glyph at a random height that keeps it inside.
        let (total_w, _) = extent(&glyphs, pack);
        let x_pad = margin + amp * 0.6;
        let slack = (w - 2.0 * x_pad - total_w).max(0.0);
        let mut x = x_pad + slack * rng.random_range(0.25f32..0.75) + glyphs[0].ex;
        let max_x = w - x_pad;
        for i in 0..glyphs.len() {
            if i > 0 {
                x += (glyphs[i - 1].ex + glyphs[i].ex) * pack;
            }
            let g = &glyphs[i];
            let cx = x.clamp(x_pad + g.ex, (max_x - g.ex).max(x_pad + g.ex));
            let lo = margin + amp + g.ey;
            let hi = (h - margin - amp - g.ey).max(lo);
            let cy = if hi > lo {
                rng.random_range(lo..=hi)
            } else {
                lo
            };
            draw_glyph(&mut img, g, cx, cy, palette[i], &band, (&dx_of_y, &dy_of_x));
        }

        // Noise curves in the glyphs' colours, left to right across the text.
        let stroke = (px_size * 0.06).clamp(1.0, 3.0);
        let noise = if decorate { cfg.noise } else { 0 };
        for i in 0..noise {
            let colour = palette[i as usize % palette.len()];
            let y = |rng: &mut _| random_in(rng, h * 0.15, h * 0.85);
            let p0 = (random_in(rng, 0.0, w * 0.2), y(rng));
            let p1 = (
                random_in(rng, w * 0.2, w * 0.5),
                random_in(rng, -h * 0.3, h * 1.3),
            );
            let p2 = (
                random_in(rng, w * 0.5, w * 0.8),
                random_in(rng, -h * 0.3, h * 1.3),
            );
            let p3 = (random_in(rng, w * 0.8, w), y(rng));
            let thick = stroke * rng.random_range(0.8f32..1.3);
            draw_curve(&mut img, [p0, p1, p2, p3], thick, colour);
        }
        Ok(img)
    }

    /// Rasterises every glyph upright at `px_size` x its own size factor.
    fn rasterise(&self, chars: &[char], params: &[GlyphParams], px_size: f32) -> Vec<Raster> {
        chars
            .iter()
            .zip(params)
            .filter_map(|(&c, p)| {
                let scale = PxScale::from(px_size * p.size);
                let glyph = self.font.glyph_id(c).with_scale(scale);
                let outlined = self.font.outline_glyph(glyph)?;
                let b = outlined.px_bounds();
                let bw = b.width() as usize;
                let bh = b.height() as usize;
                let stride = bw + 2;
                let mut cov = vec![0f32; stride * (bh + 2)];
                outlined.draw(|x, y, v| {
                    cov[(y as usize + 1) * stride + x as usize + 1] = v.min(1.0);
                });
                let m = p.m;
                let (hw, hh) = (bw as f32 / 2.0, bh as f32 / 2.0);
                let ex = m[0].abs() * hw + m[1].abs() * hh;
                let ey = m[2].abs() * hw + m[3].abs() * hh;
                let det = m[0] * m[3] - m[1] * m[2];
                let inv = [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det];
                Some(Raster {
                    cov,
                    stride,
                    bw,
                    bh,
                    inv,
                    ex,
                    ey,
                })
            })
            .collect()
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

struct GlyphParams {
    /// Forward 2x2 transform, row-major.
    m: [f32; 4],
    size: f32,
}

struct Raster {
    /// Coverage with a one-pixel zero border, `stride` = bw + 2.
    cov: Vec<f32>,
    stride: usize,
    bw: usize,
    bh: usize,
    /// Inverse of the forward transform.
    inv: [f32; 4],
    /// Half extents of the transformed glyph box.
    ex: f32,
    ey: f32,
}

/// Width of the packed row and height of the tallest glyph.
fn extent(glyphs: &[Raster], pack: f32) -> (f32, f32) {
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
    let (l_lo, l_hi) = if dark_bg { (0.68, 0.85) } else { (0.18, 0.42) };
    let l = rng.random_range(l_lo..l_hi);
    if !color {
        let v = (l * 255.0) as u8;
        return [v, v, v];
    }
    let s = rng.random_range(0.55f32..0.95);
    let c = hsl(hue.rem_euclid(360.0), s, l);
    // Yellows and cyans are bright at any lightness: pull luma into range.
    let y = luma(c).max(1.0);
    let k = if dark_bg {
        (150.0 / y).max(1.0)
    } else {
        (120.0 / y).min(1.0)
    };
    c.map(|v| (v as f32 * k).round().clamp(0.0, 255.0) as u8)
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

/// A dark wavy band across the image; glyphs and curves inside it are drawn
/// in a light colour, so their polarity flips where they cross its edges.
struct Band {
    top: Vec<f32>,
    bot: Vec<f32>,
    dark: [u8; 3],
    light: [u8; 3],
}

impl Band {
    fn new(
        rng: &mut impl Rng,
        width: u32,
        height: u32,
        cfg: &SceneConfig,
        dark_bg: bool,
        hue: f32,
    ) -> Band {
        let (w, h) = (width as f32, height as f32);
        let bg = cfg.background.unwrap_or([255, 255, 255]);
        let (dark, light) = if dark_bg {
            (glyph_colour(rng, cfg.color, false, hue), bg)
        } else {
            let l = if cfg.background.is_some() {
                bg
            } else {
                [250, 250, 250]
            };
            (glyph_colour(rng, cfg.color, false, hue), l)
        };
        // A band of 26-36 % of the height whose centre line drifts across.
        let thick = h * rng.random_range(0.26f32..0.36);
        let c0 = random_in(rng, h * 0.2, h * 0.8);
        let c1 = random_in(rng, h * 0.2, h * 0.8);
        let f = rng.random_range(0.8f32..1.6) * std::f32::consts::TAU / w;
        let ph = phase(rng);
        let wob = h * 0.12;
        let mut top = Vec::with_capacity(width as usize);
        let mut bot = Vec::with_capacity(width as usize);
        for x in 0..width {
            let t = x as f32 / w;
            let centre = c0 + (c1 - c0) * t + wob * (x as f32 * f + ph).sin();
            top.push(centre - thick / 2.0);
            bot.push(centre + thick / 2.0);
        }
        Band {
            top,
            bot,
            dark,
            light,
        }
    }

    fn fill(&self, img: &mut RgbaImage) {
        let (width, height) = img.dimensions();
        let buf: &mut [u8] = img.as_mut();
        for x in 0..width {
            let (t, b) = (self.top[x as usize], self.bot[x as usize]);
            let y0 = (t - 1.0).floor().max(0.0) as u32;
            let y1 = ((b + 1.0).ceil().max(0.0) as u32).min(height);
            for y in y0..y1 {
                let cy = y as f32 + 0.5;
                let a = (cy - t + 0.5).clamp(0.0, 1.0) * (b - cy + 0.5).clamp(0.0, 1.0);
                blend(buf, ((y * width + x) * 4) as usize, self.dark, a);
            }
        }
    }

    /// A band that covers nothing.
    fn empty(self) -> Band {
        let n = self.top.len();
        Band {
            top: vec![-1.0; n],
            bot: vec![-1.0; n],
            ..self
        }
    }

    #[inline]
    fn colour_at(&self, x: u32, y: u32, colour: [u8; 3]) -> [u8; 3] {
        let cy = y as f32 + 0.5;
        if cy > self.top[x as usize] && cy < self.bot[x as usize] {
            self.light
        } else {
            colour
        }
    }
}

/// Blends `colour` at coverage `a` over the pixel at byte offset `i`.
#[inline]
fn blend(buf: &mut [u8], i: usize, colour: [u8; 3], a: f32) {
    if a <= 0.0 {
        return;
    }
    let a = a.min(1.0);
    let da = buf[i + 3] as f32 / 255.0;
    let out_a = a + da * (1.0 - a);
    if out_a <= 0.0 {
        return;
    }
    let k = da * (1.0 - a);
    for c in 0..3 {
        let v = (colour[c] as f32 * a + buf[i + c] as f32 * k) / out_a;
        buf[i + c] = v.round().clamp(0.0, 255.0) as u8;
    }
    buf[i + 3] = (out_a * 255.0).round() as u8;
}

fn draw_glyph(
    img: &mut RgbaImage,
    g: &Raster,
    cx: f32,
    cy: f32,
    colour: [u8; 3],
    band: &Band,
    (dx_of_y, dy_of_x): (&[f32], &[f32]),
) {
    let (width, height) = img.dimensions();
    let amp = 6.0;
    let x0 = (cx - g.ex - amp).floor().max(0.0) as u32;
    let x1 = ((cx + g.ex + amp).ceil() as u32).min(width);
    let y0 = (cy - g.ey - amp).floor().max(0.0) as u32;
    let y1 = ((cy + g.ey + amp).ceil() as u32).min(height);
    let (hw, hh) = (g.bw as f32 / 2.0, g.bh as f32 / 2.0);
    let inv = g.inv;
    let stride = g.stride;
    let rows = g.bh + 2;
    let buf: &mut [u8] = img.as_mut();
    for y in y0..y1 {
        let wy = y as f32 + 0.5;
        let sx_shift = dx_of_y[y as usize];
        for x in x0..x1 {
            // Warp, then the glyph's inverse transform, into bitmap space.
            let px = x as f32 + 0.5 + sx_shift - cx;
            let py = wy + dy_of_x[x as usize] - cy;
            // Bitmap coordinates of the sample, pixel centres at i + 0.5,
            // offset by the one-pixel border.
            let u = inv[0] * px + inv[1] * py + hw + 0.5;
            let v = inv[2] * px + inv[3] * py + hh + 0.5;
            if u < 0.0 || v < 0.0 {
                continue;
            }
            let (iu, iv) = (u as usize, v as usize);
            if iu + 1 >= stride || iv + 1 >= rows {
                continue;
            }
            let (fu, fv) = (u - iu as f32, v - iv as f32);
            let o = iv * stride + iu;
            let top = g.cov[o] + (g.cov[o + 1] - g.cov[o]) * fu;
            let bot = g.cov[o + stride] + (g.cov[o + stride + 1] - g.cov[o + stride]) * fu;
            let a = top + (bot - top) * fv;
            if a > 0.003 {
                let c = band.colour_at(x, y, colour);
                blend(buf, ((y * width + x) * 4) as usize, c, a);
            }
        }
    }
}

/// A cubic Bézier stroke of width `thick`, antialiased by the distance to a
/// polyline of the curve; coverage is the maximum over segments, blended once.
fn draw_curve(img: &mut RgbaImage, p: [(f32, f32); 4], thick: f32, colour: [u8; 3]) {
    const SEGMENTS: usize = 14;
    let (width, height) = img.dimensions();
    let at = |t: f32| {
        let u = 1.0 - t;
        let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
        (
            a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0,
            a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1,
        )
    };
    let pts: Vec<(f32, f32)> = (0..=SEGMENTS)
        .map(|s| at(s as f32 / SEGMENTS as f32))
        .collect();
    let half = thick / 2.0;
    let pad = half + 1.0;
    let (mut lx, mut ly, mut hx, mut hy) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in &pts {
        (lx, ly, hx, hy) = (lx.min(x), ly.min(y), hx.max(x), hy.max(y));
    }
    let bx0 = (lx - pad).floor().max(0.0) as u32;
    let by0 = (ly - pad).floor().max(0.0) as u32;
    let bx1 = ((hx + pad).ceil().max(0.0) as u32).min(width);
    let by1 = ((hy + pad).ceil().max(0.0) as u32).min(height);
    if bx0 >= bx1 || by0 >= by1 {
        return;
    }
    let mw = (bx1 - bx0) as usize;
    let mut mask = vec![0f32; mw * (by1 - by0) as usize];
    for seg in pts.windows(2) {
        let ((ax, ay), (bx, by)) = (seg[0], seg[1]);
        let x0 = (ax.min(bx) - pad).floor().max(bx0 as f32) as u32;
        let x1 = ((ax.max(bx) + pad).ceil().max(0.0) as u32).min(bx1);
        let y0 = (ay.min(by) - pad).floor().max(by0 as f32) as u32;
        let y1 = ((ay.max(by) + pad).ceil().max(0.0) as u32).min(by1);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = (dx * dx + dy * dy).max(1e-6);
        for y in y0..y1 {
            for x in x0..x1 {
                let (qx, qy) = (x as f32 + 0.5 - ax, y as f32 + 0.5 - ay);
                let t = ((qx * dx + qy * dy) / len2).clamp(0.0, 1.0);
                let (ex, ey) = (qx - t * dx, qy - t * dy);
                let a = half + 0.5 - (ex * ex + ey * ey).sqrt();
                let m = &mut mask[(y - by0) as usize * mw + (x - bx0) as usize];
                if a > *m {
                    *m = a.min(1.0);
                }
            }
        }
    }
    let buf: &mut [u8] = img.as_mut();
    for y in by0..by1 {
        for x in bx0..bx1 {
            let a = mask[(y - by0) as usize * mw + (x - bx0) as usize];
            if a > 0.0 {
                blend(buf, ((y * width + x) * 4) as usize, colour, a);
            }
        }
    }
}

/// PNG with fast compression: RGB when opaque, RGBA when transparent.
pub fn encode_png(img: &RgbaImage, transparent: bool) -> Result<Vec<u8>, RenderError> {
    let (w, h) = img.dimensions();
    let mut out = Vec::with_capacity((w * h) as usize);
    let enc = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub);
    let res = if transparent {
        enc.write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
    } else {
        let rgb: Vec<u8> = img
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        enc.write_image(&rgb, w, h, ExtendedColorType::Rgb8)
    };
    res.map_err(|e| RenderError::Encode(e.to_string()))?;
    Ok(out)
}

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
            let png = r.render_png(&cfg, &new_challenge(&cfg), w, h).unwrap();
            let img = decode(&png);
            assert_eq!((img.width(), img.height()), (w, h));
            assert_eq!(img.color(), image::ColorType::Rgb8, "opaque background");
        }
        let url = png_data_url(&r.render_png(&cfg, &new_challenge(&cfg), 150, 50).unwrap());
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
        let png = r.render_png(&cfg, &new_challenge(&cfg), 150, 50).unwrap();
        let img = decode(&png).to_rgba8();
        assert_eq!(img.dimensions(), (150, 50));
        assert!(img.pixels().any(|p| p[3] == 0), "some transparent pixels");
        assert!(img.pixels().any(|p| p[3] == 255), "some opaque pixels");
    }

    #[test]
    fn out_of_range_sizes_are_refused() {
        let r = Renderer::builtin();
        let cfg = SceneConfig::default();
        let ch = new_challenge(&cfg);
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
                    let ch = new_challenge(&cfg);
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
