//! One default captcha end to end: code + render + PNG + base64 data URL.
//!
//! cargo bench -p gatehouse --bench captcha

use criterion::{Criterion, criterion_group, criterion_main};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use gatehouse::captcha::{CaptchaConfig, Renderer, new_challenge, png_data_url};

fn bench(c: &mut Criterion) {
    let config = CaptchaConfig::default();
    let renderer = Renderer::builtin();
    let scene = config.scene("login").clone();
    c.bench_function("captcha_default_150x50_end_to_end", |b| {
        b.iter(|| {
            let challenge = new_challenge(scene.code());
            let png = renderer
                .render_png(&scene, &challenge, scene.width, scene.height)
                .expect("render");
            std::hint::black_box(png_data_url(&png))
        })
    });
    // The two halves of the default captcha: drawing, and PNG encoding.
    c.bench_function("captcha_default_150x50_draw_only", |b| {
        let mut rng = rand::rng();
        b.iter(|| {
            let challenge = new_challenge(scene.code());
            renderer
                .render_image(&scene, &challenge, scene.width, scene.height, &mut rng)
                .expect("render")
        })
    });
    let img = renderer
        .render_image(
            &scene,
            &new_challenge(scene.code()),
            scene.width,
            scene.height,
            &mut rand::rng(),
        )
        .expect("render");
    c.bench_function("captcha_default_150x50_encode_only", |b| {
        b.iter(|| gatehouse::captcha::render::encode_png(&img, false).expect("encode"))
    });
    // PNG row filters on the same picture (RGB, fast deflate).
    let rgb = image::DynamicImage::ImageRgba8(img.clone()).to_rgb8();
    for (name, filter) in [
        ("none", FilterType::NoFilter),
        ("sub", FilterType::Sub),
        ("up", FilterType::Up),
        ("paeth", FilterType::Paeth),
        ("adaptive", FilterType::Adaptive),
    ] {
        let encode = || {
            let mut out = Vec::with_capacity(16 * 1024);
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, filter)
                .write_image(
                    rgb.as_raw(),
                    rgb.width(),
                    rgb.height(),
                    ExtendedColorType::Rgb8,
                )
                .expect("encode");
            out
        };
        eprintln!("png filter {name}: {} bytes", encode().len());
        c.bench_function(&format!("png_filter_{name}"), |b| b.iter(encode));
    }
    let mut math = scene.clone();
    math.math_expr = true;
    c.bench_function("captcha_math_150x50_end_to_end", |b| {
        b.iter(|| {
            let challenge = new_challenge(math.code());
            let png = renderer
                .render_png(&math, &challenge, math.width, math.height)
                .expect("render");
            std::hint::black_box(png_data_url(&png))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
