//! Noise around the code: faint decoy glyphs under it and thin curves over it.

use image::{Rgba, RgbaImage};
use rand::Rng;

use super::colour::{glyph_colour, over};
use super::glyph::{Placed, Shape, StripeDirection, Warp, draw_glyph};
use super::layout::random_in;
use super::{Renderer, SceneConfig};

impl Renderer {
    /// Faint small glyphs under the code, in glyph-like colours.
    pub(super) fn draw_decoys(
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
                stripe_dir: StripeDirection::NONE,
                halo: None,
                warp: Warp::NONE,
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
}

/// Thin noise curves left to right across the code; each stretch of a curve
/// takes the colour of the glyph nearest to it.
pub(super) fn draw_curves(
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
