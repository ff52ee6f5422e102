//! Writes sample captchas and their answers, for the OCR measurement
//! (scripts/ocr_rate.py) and for checking by eye.
//!
//! cargo run --release -p gatehouse --example captcha_samples -- OUT_DIR [COUNT] [default|math] [--sheet] [WIDTHxHEIGHT]
//!
//! Writes OUT_DIR/<i>.png and OUT_DIR/answers.tsv (file, display, answer).
//! With --sheet, also OUT_DIR/sheet.png: the first 20 samples in a grid.
//! With COUNT 0 it draws one captcha and prints only its data-URL length
//! (for peak-memory measurement of a fresh process). With --no-write it only
//! draws and encodes COUNT captchas, for `perf stat` (CPU time and
//! instructions per captcha, less disturbed by other load than wall time).

use std::io::Write;

use gatehouse::captcha::{CaptchaConfig, Renderer, new_challenge, png_data_url};
use image::RgbaImage;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .cloned()
        .unwrap_or_else(|| "captcha-samples".into());
    let count: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let math = args.iter().any(|a| a == "math");
    let sheet = args.iter().any(|a| a == "--sheet");
    let no_write = args.iter().any(|a| a == "--no-write");
    let size = args.iter().find_map(|a| {
        let (w, h) = a.split_once('x')?;
        Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?))
    });
    let config = match CaptchaConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut cfg = config.root().clone();
    cfg.math_expr |= math;
    let (w, h) = size.unwrap_or((cfg.width, cfg.height));
    let renderer = match Renderer::from_env() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if count == 0 {
        let challenge = new_challenge(cfg.code());
        let png = renderer.render_png(&cfg, &challenge, w, h).expect("render");
        println!("{}", png_data_url(&png).len());
        return;
    }
    if no_write {
        let mut total = 0;
        for _ in 0..count {
            let challenge = new_challenge(cfg.code());
            let png = renderer.render_png(&cfg, &challenge, w, h).expect("render");
            total += std::hint::black_box(png_data_url(&png)).len();
        }
        println!(
            "{count} captchas, {} bytes of data URL on average",
            total / count
        );
        return;
    }
    std::fs::create_dir_all(&out).expect("create output dir");
    let mut tsv = std::fs::File::create(format!("{out}/answers.tsv")).expect("answers.tsv");
    let mut images: Vec<RgbaImage> = Vec::new();
    for i in 0..count {
        let challenge = new_challenge(cfg.code());
        let png = renderer.render_png(&cfg, &challenge, w, h).expect("render");
        let name = format!("{i:04}.png");
        std::fs::write(format!("{out}/{name}"), &png).expect("write png");
        writeln!(tsv, "{name}\t{}\t{}", challenge.display, challenge.answer).expect("write tsv");
        if sheet && images.len() < 20 {
            images.push(image::load_from_memory(&png).expect("decode").to_rgba8());
        }
    }
    if sheet && !images.is_empty() {
        let cols = 4u32;
        let rows = (images.len() as u32).div_ceil(cols);
        let (cw, ch) = (w + 6, h + 6);
        let mut grid = RgbaImage::from_pixel(cols * cw, rows * ch, image::Rgba([90, 90, 90, 255]));
        for (i, im) in images.iter().enumerate() {
            let (c, r) = (i as u32 % cols, i as u32 / cols);
            image::imageops::overlay(&mut grid, im, (c * cw + 3) as i64, (r * ch + 3) as i64);
        }
        let grid = image::imageops::resize(
            &grid,
            grid.width() * 2,
            grid.height() * 2,
            image::imageops::FilterType::Nearest,
        );
        grid.save(format!("{out}/sheet.png")).expect("write sheet");
    }
}
