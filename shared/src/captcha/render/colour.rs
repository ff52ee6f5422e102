//! Colours: glyph colours, luma, HSL, and blending a colour into a pixel.

use image::Rgba;
use rand::Rng;

/// Luma (BT.601, as OCR greyscale conversions use).
pub(super) fn luma([r, g, b]: [u8; 3]) -> f32 {
    0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32
}

/// A glyph colour: a saturated colour of the given hue (or a dark grey without
/// `color`), dark on light backgrounds and light on dark ones.
pub(super) fn glyph_colour(rng: &mut impl Rng, color: bool, dark_bg: bool, hue: f32) -> [u8; 3] {
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

/// `c` moved to luma `l`: darkened, or mixed with white.
pub(super) fn match_luma(c: [u8; 3], l: f32) -> [u8; 3] {
    let y = luma(c).max(1.0);
    if y >= l {
        c.map(|v| (v as f32 * l / y).round() as u8)
    } else {
        let t = (l - y) / (255.0 - y).max(1.0);
        c.map(|v| (v as f32 + (255.0 - v as f32) * t).round() as u8)
    }
}

/// RGB of hue `h` (degrees, 0..360), saturation `s` and lightness `l`.
pub(super) fn hsl(h: f32, s: f32, l: f32) -> [u8; 3] {
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
pub(super) fn blend(buf: &mut [u8], i: usize, colour: [u8; 3], a: f32) {
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

/// Source-over blending for imageproc's antialiased lines (`weight` is the
/// line's coverage).
pub(super) fn over(line: Rgba<u8>, under: Rgba<u8>, weight: f32) -> Rgba<u8> {
    let mut px = under.0;
    blend(&mut px, 0, [line[0], line[1], line[2]], weight);
    Rgba(px)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

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
