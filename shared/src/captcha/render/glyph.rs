//! One code glyph: its shape (transform, warp, stripes, halo), placement and drawing.

use image::RgbaImage;

use super::colour::blend;
use super::raster::{RasterRef, bilinear};

/// Period of a tiled glyph's stripes, as a fraction of its raster height,
/// and the share of each period drawn light. Measured (as for `TILES` in
/// tile.rs, on stripes with a wave of their own): periods 0.10, 0.12, 0.15,
/// 0.18, 0.25 gave 17.4, 12.2, 4.0, 2.6, 0.6 % solved; finer stripes read
/// better, coarser ones cut glyphs into pieces. A light share of 0.6 raised
/// 0.15 to 10.2 %. Straight stripes (bent only by the glyph's warp) read as
/// well, gave 3.4 %, and save the wave's sine per pixel (about 12 µs a
/// captcha).
const STRIPE_PERIOD: f32 = 0.15;
const LIGHT_STRIPE: f32 = 0.5;

/// A glyph's sine warp: each row shifted horizontally, and each column
/// vertically, by a sine of its position in the image.
#[derive(Clone, Copy)]
pub(super) struct Warp {
    /// Amplitude of both shifts, a fraction of the em.
    pub(super) amplitude: f32,
    /// Period of the horizontal shift along the rows (a fraction of the em),
    /// and its phase (radians).
    pub(super) row_shift_period: f32,
    pub(super) row_shift_phase: f32,
    /// Period of the vertical shift along the columns (a fraction of the
    /// em), and its phase (radians).
    pub(super) column_shift_period: f32,
    pub(super) column_shift_phase: f32,
}

impl Warp {
    /// No shift at all (decoy glyphs).
    pub(super) const NONE: Warp = Warp {
        amplitude: 0.0,
        row_shift_period: 1.0,
        row_shift_phase: 0.0,
        column_shift_period: 1.0,
        column_shift_phase: 0.0,
    };
}

/// Stripes across the upright glyph (of a glyph on a tile): their normal,
/// which need not be a unit vector, and their offset along it, a fraction of
/// a period. The glyph's own warp bends them.
#[derive(Clone, Copy)]
pub(super) struct StripeDirection {
    pub(super) normal_x: f32,
    pub(super) normal_y: f32,
    pub(super) offset: f32,
}

impl StripeDirection {
    /// For glyphs never striped.
    pub(super) const NONE: StripeDirection = StripeDirection {
        normal_x: 0.0,
        normal_y: 0.0,
        offset: 0.0,
    };
}

#[derive(Clone, Copy)]
pub(super) struct Shape {
    /// Forward 2x2 transform, row-major.
    pub(super) m: [f32; 4],
    pub(super) size: f32,
    pub(super) colour: [u8; 3],
    /// Light stripe colour: `Some` for a glyph on a tile, striped across in
    /// it and `colour`.
    pub(super) stripes: Option<[u8; 3]>,
    /// Where the stripes run (when `stripes` is set).
    pub(super) stripe_dir: StripeDirection,
    /// Halo colour: the dilated glyph drawn under it, only over pixels
    /// already drawn.
    pub(super) halo: Option<[u8; 3]>,
    pub(super) warp: Warp,
}

/// A glyph ready to draw: raster, inverse transform, box and position.
pub(super) struct Placed<'a> {
    raster: RasterRef<'a>,
    /// Image offset from the centre -> raster coordinates.
    inv: [f32; 4],
    /// Raster centre.
    rc: (f32, f32),
    /// Half extents of the transformed, warped glyph box.
    pub(super) ex: f32,
    pub(super) ey: f32,
    /// Warp amplitude (px) and angular frequencies (rad per px).
    amp: f32,
    fy: f32,
    fx: f32,
    /// Centre in the image (set when the glyph is placed).
    pub(super) cx: f32,
    pub(super) cy: f32,
}

impl<'a> Placed<'a> {
    /// `raster` (drawn at `k` times its size) with the shape `s`, for a
    /// glyph of `px` pixels, not yet placed.
    pub(super) fn new(raster: RasterRef<'a>, k: f32, s: &Shape, px: f32) -> Self {
        let r = raster.get();
        let (hw, hh) = (
            (r.stride - 2 * r.pad) as f32 / 2.0,
            (r.rows - 2 * r.pad) as f32 / 2.0,
        );
        let pad = r.pad as f32;
        let m = s.m.map(|v| v * k);
        let amp = s.warp.amplitude * px;
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
            fy: tau / (s.warp.row_shift_period * px).max(1.0),
            fx: tau / (s.warp.column_shift_period * px).max(1.0),
            cx: 0.0,
            cy: 0.0,
        }
    }
}

/// Draws one placed glyph at opacity `alpha`.
pub(super) fn draw_glyph(img: &mut RgbaImage, g: &Placed, s: &Shape, alpha: f32) {
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
        .map(|x| g.amp * ((x as f32 + 0.5 - g.cx) * g.fx + s.warp.column_shift_phase).sin())
        .collect();
    let inv = g.inv;
    let (stride, rows) = (r.stride, r.rows);
    let (rcx, rcy) = g.rc;
    // Stripe phase = u * su + v * sv + s0, in periods.
    let StripeDirection {
        normal_x: nx,
        normal_y: ny,
        offset,
    } = s.stripe_dir;
    let stripe_f = 1.0 / ((nx * nx + ny * ny).sqrt().max(1e-3) * STRIPE_PERIOD * rows as f32);
    let (su, sv) = (nx * stripe_f, ny * stripe_f);
    let s0 = offset - rcx * su - rcy * sv;
    let buf: &mut [u8] = img.as_mut();
    for y in y0..y1 {
        let py0 = y as f32 + 0.5 - g.cy;
        let dx = g.amp * (py0 * g.fy + s.warp.row_shift_phase).sin();
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
