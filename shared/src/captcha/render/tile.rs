//! Tiles under two code glyphs: which glyphs, their blue and amber colours, the box.

use image::RgbaImage;
use rand::Rng;

use super::colour::{blend, hsl, match_luma};
use super::glyph::Placed;

/// Glyphs on a tile in one captcha (fewer when the code is too short to keep
/// them apart). Measured with scripts/ocr_rate.py (500 default captchas,
/// half-glyph splits in place of stripes): one tile 13.4 % solved, two
/// 2.8 %, two with every other glyph plain 0.8 %. Hollow and split styles
/// on the other glyphs did not hinder the solver, only people.
pub(super) const TILES: usize = 2;
/// Luma (BT.601, as OCR greyscale conversions use) of a tile and of the
/// glyph half drawn on it in the opposite colour.
pub(super) const TILE_LUMA: f32 = 118.0;

/// Which of `n` glyphs sit on a tile: [`TILES`] of them, or as many as fit
/// with none side by side, every such choice equally likely.
pub(super) fn pick_tiles(n: usize, rng: &mut impl Rng) -> Vec<bool> {
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
pub(super) fn blue_yellow_pair(rng: &mut impl Rng, l: f32) -> ([u8; 3], [u8; 3]) {
    let amber = match_luma(hsl(rng.random_range(28.0f32..46.0), 1.0, 0.5), l);
    let blue = match_luma(hsl(rng.random_range(205.0f32..222.0), 1.0, 0.5), l);
    if rng.random_bool(0.5) {
        (amber, blue)
    } else {
        (blue, amber)
    }
}

/// Draws the rounded box of `g` (its transformed, warped extent) in `colour`.
pub(super) fn draw_tile(img: &mut RgbaImage, g: &Placed, colour: [u8; 3]) {
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::super::colour::luma;
    use super::*;

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
}
