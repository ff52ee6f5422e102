//! Coverage rasters of upright glyphs, their dilation for halos, bilinear sampling.

use ab_glyph::{Font, FontArc, PxScale};

/// Pixel size at which glyphs are rasterised once and cached; larger glyphs
/// are rasterised at their own size for each captcha.
pub(super) const REF_PX: f32 = 64.0;
/// Width of the halo that cuts a glyph out of a neighbouring tile, as a
/// fraction of the em size.
const HALO_WIDTH: f32 = 0.035;

/// Coverage of one upright glyph and its dilation (for halos), with a zero
/// border of `pad` pixels.
pub(super) struct Raster {
    pub(super) cov: Vec<f32>,
    pub(super) outer: Vec<f32>,
    pub(super) stride: usize,
    pub(super) rows: usize,
    pub(super) pad: usize,
}

/// A raster from the renderer's cache, or one made for this captcha.
pub(super) enum RasterRef<'a> {
    Cached(&'a Raster),
    Owned(Raster),
}

impl RasterRef<'_> {
    pub(super) fn get(&self) -> &Raster {
        match self {
            RasterRef::Cached(r) => r,
            RasterRef::Owned(r) => r,
        }
    }
}

/// `c` at `px`, or `None` when the font has no outline for it.
pub(super) fn rasterise(font: &FontArc, c: char, px: f32) -> Option<Raster> {
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

/// `map` sampled between the four values from offset `o` (`fu`, `fv` in 0..1).
#[inline(always)]
pub(super) fn bilinear(map: &[f32], stride: usize, o: usize, fu: f32, fv: f32) -> f32 {
    let (t, b) = (&map[o..o + 2], &map[o + stride..o + stride + 2]);
    let top = t[0] + (t[1] - t[0]) * fu;
    let bot = b[0] + (b[1] - b[0]) * fu;
    top + (bot - top) * fv
}
