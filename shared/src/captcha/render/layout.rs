//! Layout of the code: random glyph shapes, the size that fits, and the places.

use rand::Rng;

use super::colour::glyph_colour;
use super::glyph::{Placed, Shape, StripeDirection, Warp};
use super::{RenderError, Renderer};

/// Empty border kept around the code, in pixels.
const MARGIN: f32 = 1.5;

/// Share of two neighbours' half widths taken as the distance between their
/// centres (math codes are set looser).
fn pack(math: bool) -> f32 {
    if math { 0.86 } else { 0.8 }
}

/// A random shape for each character, hues spread around the wheel so that
/// neighbours differ. Drawn before sizing: the fit scales sizes only.
pub(super) fn shapes(
    chars: &[char],
    math: bool,
    color: bool,
    dark_bg: bool,
    rng: &mut impl Rng,
) -> Vec<Shape> {
    let max_rot: f32 = if math { 0.18 } else { 0.3 };
    let hue0 = rng.random_range(0.0f32..360.0);
    let n = chars.len() as f32;
    chars
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
            // The fields are drawn from `rng` in the order written.
            Shape {
                m,
                size: rng.random_range(0.93f32..1.07),
                colour: glyph_colour(rng, color, dark_bg, hue),
                stripes: None,
                halo: None,
                stripe_dir: StripeDirection {
                    normal_x: rng.random_range(-1.0f32..1.0),
                    normal_y: rng.random_range(-1.0f32..1.0),
                    offset: rng.random_range(0.0f32..1.0),
                },
                warp: Warp {
                    amplitude: rng.random_range(0.035f32..0.06),
                    row_shift_period: rng.random_range(0.6f32..1.0),
                    row_shift_phase: phase(rng),
                    column_shift_period: rng.random_range(0.7f32..1.2),
                    column_shift_phase: phase(rng),
                },
            }
        })
        .collect()
}

/// The glyphs sized to fit the image (not yet placed), and the font size:
/// start large (glyphs should fill the height) and shrink until the packed
/// row fits.
pub(super) fn fit<'r>(
    renderer: &'r Renderer,
    chars: &[char],
    shapes: &[Shape],
    font_size: f32,
    (width, height): (u32, u32),
    math: bool,
) -> Result<(Vec<Placed<'r>>, f32), RenderError> {
    let (w, h) = (width as f32, height as f32);
    let pack = pack(math);
    let mut px = font_size.max(h * 1.05);
    let mut glyphs: Vec<Placed> = Vec::with_capacity(chars.len());
    for _ in 0..4 {
        glyphs.clear();
        for (c, s) in chars.iter().zip(shapes) {
            let Some((raster, k)) = renderer.raster(*c, px * s.size) else {
                continue;
            };
            glyphs.push(Placed::new(raster, k, s, px * s.size));
        }
        if glyphs.is_empty() {
            return Err(RenderError::Empty);
        }
        let (total_w, max_h) = extent(&glyphs, pack);
        let avail_w = w - 2.0 * MARGIN;
        let avail_h = h - 2.0 * MARGIN;
        let k = (avail_w / total_w).min(avail_h / max_h);
        if k >= 1.0 {
            break;
        }
        px *= k * 0.985;
    }
    Ok((glyphs, px))
}

/// Places fitted glyphs (not empty): packed left to right with extra gaps
/// when there is room, the block centred with jitter, each glyph at a random
/// height inside.
pub(super) fn place<'r>(
    mut glyphs: Vec<Placed<'r>>,
    (width, height): (u32, u32),
    math: bool,
    rng: &mut impl Rng,
) -> Vec<Placed<'r>> {
    let (w, h) = (width as f32, height as f32);
    let pack = pack(math);
    let (total_w, _) = extent(&glyphs, pack);
    let mut slack = (w - 2.0 * MARGIN - total_w).max(0.0);
    let gaps = glyphs.len().saturating_sub(1) as f32;
    let avg_w = total_w / glyphs.len() as f32;
    let gap = if gaps > 0.0 {
        (slack * 0.5 / gaps).min(avg_w * 0.25)
    } else {
        0.0
    };
    slack -= gap * gaps;
    let mut x = MARGIN + slack * rng.random_range(0.3f32..0.7) + glyphs[0].ex;
    for i in 0..glyphs.len() {
        if i > 0 {
            x += (glyphs[i - 1].ex + glyphs[i].ex) * pack + gap;
        }
        let g = &mut glyphs[i];
        g.cx = x.clamp(MARGIN + g.ex, (w - MARGIN - g.ex).max(MARGIN + g.ex));
        let lo = MARGIN + g.ey;
        let hi = (h - MARGIN - g.ey).max(lo);
        g.cy = random_in(rng, lo, hi);
    }
    glyphs
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

/// Uniform in `lo..hi`, or `lo` when the range is empty.
pub(super) fn random_in(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}
