//! Golden images: fixed codes drawn with seeded generators in every mode the
//! scene config allows, hashed (SHA-256 of the RGBA pixels, and of the PNG for
//! a few). A change to the drawing shows up here; when it is meant, replace
//! the table with the one the failure prints.
//!
//! The hashes depend on `rand`'s `StdRng` stream and on `image`'s PNG
//! encoder, both pinned by Cargo.lock: an upgrade of either may also call for
//! a new table.

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

use super::*;
use Mode::{CodeLayer, Full, GlyphsOnly};

#[derive(Clone, Copy)]
enum Mode {
    /// `render_image`, and the PNG of it.
    Full,
    /// Glyphs alone (the layout test hook).
    GlyphsOnly,
    /// The full image and the code layer (the layout test hook).
    CodeLayer,
}

struct Case {
    name: &'static str,
    display: &'static str,
    size: (u32, u32),
    seed: u64,
    mode: Mode,
    cfg: fn(&mut SceneConfig),
}

fn same(_: &mut SceneConfig) {}

const fn case(
    name: &'static str,
    display: &'static str,
    size: (u32, u32),
    seed: u64,
    mode: Mode,
    cfg: fn(&mut SceneConfig),
) -> Case {
    Case {
        name,
        display,
        size,
        seed,
        mode,
        cfg,
    }
}

const CASES: &[Case] = &[
    case("default_seed1", "a3Kx", (150, 50), 1, Full, same),
    case("default_seed2", "7bWe", (150, 50), 2, Full, same),
    case("default_seed3", "a3Kx", (150, 50), 3, Full, same),
    case("size1", "K", (150, 50), 4, Full, |c| c.size = 1),
    case("size2", "pE", (150, 50), 5, Full, |c| c.size = 2),
    case("size6", "2hNr9Y", (150, 50), 6, Full, |c| c.size = 6),
    case("min_60x24", "x4Tp", (60, 24), 7, Full, same),
    case("wide_600x24", "x4Tp", (600, 24), 8, Full, same),
    case("tall_60x300", "x4Tp", (60, 300), 9, Full, same),
    case("max_600x300_font200", "Mk3aFe", (600, 300), 10, Full, |c| {
        c.size = 6;
        c.font_size = 200.0;
    }),
    case("font10", "cU8d", (150, 50), 11, Full, |c| {
        c.font_size = 10.0
    }),
    case("odd_61x299", "cU8d", (61, 299), 12, Full, same),
    case("noise0", "Rf6y", (150, 50), 13, Full, |c| c.noise = 0),
    case("noise20", "Rf6y", (150, 50), 13, Full, |c| c.noise = 20),
    case("transparent_grey", "H5wn", (150, 50), 14, Full, |c| {
        c.background = None;
        c.color = false;
    }),
    case("transparent_colour", "H5wn", (150, 50), 15, Full, |c| {
        c.background = None;
        c.color = true;
    }),
    case("dark_background", "tV3m", (200, 80), 16, Full, |c| {
        c.background = Some([16, 24, 40])
    }),
    case("light_background_grey", "tV3m", (200, 80), 17, Full, |c| {
        c.background = Some([255, 255, 255]);
        c.color = false;
    }),
    case("math_add", "3+5=?", (150, 50), 18, Full, |c| {
        c.math_expr = true
    }),
    case("math_sub", "7-9=?", (150, 50), 19, Full, |c| {
        c.math_expr = true
    }),
    case(
        "math_wide_600x300",
        "999-100=?",
        (600, 300),
        20,
        Full,
        |c| {
            c.math_expr = true;
            c.math_min = 100;
            c.math_max = 999;
            c.font_size = 200.0;
        },
    ),
    case(
        "glyphs_only_default",
        "a3Kx",
        (150, 50),
        21,
        GlyphsOnly,
        same,
    ),
    case(
        "glyphs_only_math_transparent",
        "12+7=?",
        (60, 24),
        22,
        GlyphsOnly,
        |c| {
            c.math_expr = true;
            c.background = None;
        },
    ),
    case("code_layer_default", "a3Kx", (150, 50), 23, CodeLayer, same),
    case(
        "code_layer_600x300",
        "2hNr9Y",
        (600, 300),
        24,
        CodeLayer,
        |c| {
            c.size = 6;
            c.font_size = 200.0;
        },
    ),
];

/// Recorded from the renderer as it was before the split into modules.
const EXPECTED: &[(&str, &str)] = &[
    (
        "default_seed1.rgba",
        "2c2d1c29ee7e4232088c43cb45efdb627b62642fb1a3cf1686606c8c504c0133",
    ),
    (
        "default_seed1.png",
        "1a6f14b693f669b4c8eb70292bb8024b2443434c7c19039fb8b8a871893c4935",
    ),
    (
        "default_seed2.rgba",
        "e3e7727f77b5eb8a1924de35bed2fce766cfe4f333d28eca83ff0ff46af5b3a1",
    ),
    (
        "default_seed2.png",
        "f6d96bed71769559c5806f7ffde246a011b07182660dc61b069984020b14fc39",
    ),
    (
        "default_seed3.rgba",
        "abf04b275ac66f72cf5a9d18a0beb1c1e00ead97642a77b7fbd1c59a3bd5b8ce",
    ),
    (
        "default_seed3.png",
        "315cb4c4b7ac274ddc342caf7dd6a223c8abc11fbb947a5984f69871220f5ab8",
    ),
    (
        "size1.rgba",
        "a3de34c04ff5d8febf1bd7194e7a3abd00872f264d0f0e6bc43f3382074c9bee",
    ),
    (
        "size1.png",
        "fe4eb405dad45f88b7efcd26bddc9ccf5755a4385091f93e312d419418d63198",
    ),
    (
        "size2.rgba",
        "e328edaf266aea3784824b10dbf41517460cfb376bf4f4f3122ea0753877eba2",
    ),
    (
        "size2.png",
        "64798ebf100e0dbcc1bf6c3238be0e146909fc5a7b7aa5b965f3e87fd3e0249d",
    ),
    (
        "size6.rgba",
        "626558cbe32f1ac0e8362d4823b5251482ac2aaa087453d206cd9086bf479bb9",
    ),
    (
        "size6.png",
        "90c13d1b8bc24f7467c1b0f34d768e0d12472cf050d5c0bafe8b774dec10d0d2",
    ),
    (
        "min_60x24.rgba",
        "520f66ba7a3b6444c5b1de4e53442136110366fdf6328ea3750f0083f6c03e43",
    ),
    (
        "min_60x24.png",
        "143c230550746c92e60f6aa9c3b7565d9ec1b282309c904307451fbbf2a927a9",
    ),
    (
        "wide_600x24.rgba",
        "77f7d96d55ca99d8651e0a475d288871fbc4fb6d34dab7cf4eb06a7695160f1b",
    ),
    (
        "wide_600x24.png",
        "db862edd7d47fe3fcfb01f16a4e1d9ea57a4538dce0768e41d4061dbe2f65fbf",
    ),
    (
        "tall_60x300.rgba",
        "492763dc42f8daf7fb40c5cc215397f419acf6630891737cb429226efae18207",
    ),
    (
        "tall_60x300.png",
        "d936277b9c441693a4b5578e56ca1e8633faa56d6d1a9975122446a822b6ec83",
    ),
    (
        "max_600x300_font200.rgba",
        "b75067fa8c8f43860a519f242a558d830ed9751445cf79739c903f96871c6fa5",
    ),
    (
        "max_600x300_font200.png",
        "bd7865546c07d863e939271be41a26aee071adf0b22c62bbd9e56195b2e57179",
    ),
    (
        "font10.rgba",
        "1fd53b673995c4b6ee3cd2af2a7c0706786fe93b0269b567161dfa5d8f86867e",
    ),
    (
        "font10.png",
        "da911bcc9209832279514591ce9db0bdfedc4cda145e6e368044d34c69366ea8",
    ),
    (
        "odd_61x299.rgba",
        "0f30b99066cc5f0298fd0f9c24bdab4657794c85edd61e336ec01cbd9f0005f0",
    ),
    (
        "odd_61x299.png",
        "9722787eb1ee34e0b4b6d377a48f61c177b521a2cab804540f6ce8e0f4a06e51",
    ),
    (
        "noise0.rgba",
        "fde590c5dd2b9e130141020cc9215058f196a5872ec248310d0fcd7dc398058c",
    ),
    (
        "noise0.png",
        "abdbca331e22a48ef99491c44000204453c6f669e669996054d9a210e93745ef",
    ),
    (
        "noise20.rgba",
        "e90a49f6b73213265b1816145843a02179a359ef2612c9512aede15e46648875",
    ),
    (
        "noise20.png",
        "c63e558ab3bc43f78a84e84594ead8fe0390b12be7cae93af3dc0979017e3c1c",
    ),
    (
        "transparent_grey.rgba",
        "a7b881816df156a414f14a3cc85a36ce680fc11f6dfefcb8654e8578b19581b1",
    ),
    (
        "transparent_grey.png",
        "f86e6f743f62d5ebf857a3823cd196d8c703c3b48acfacf9135fe66a62fb9620",
    ),
    (
        "transparent_colour.rgba",
        "c61513880cb5c2098d49ff930751bfb27c944420735b77a50005b271758e6cc2",
    ),
    (
        "transparent_colour.png",
        "8cdc2933c2a8c04d973e53306e27fc9ce5dea1e6bd24ec836d1877f7e38f5d15",
    ),
    (
        "dark_background.rgba",
        "563523043872ebf8271e57a7c38a539fedeb7cf8ae13078c0b4ad670d52a7083",
    ),
    (
        "dark_background.png",
        "9e85a9525bb8fdce45e85dfce5877983d9b832effcf15323caa634ba7720fe52",
    ),
    (
        "light_background_grey.rgba",
        "f2bb62311ce51b854be221224ca54647ee5d0746d4cbb598dd1732aa47477033",
    ),
    (
        "light_background_grey.png",
        "aa8f58bd8593bee21ef5d4f1b3e229c15dfe1b22ec1a3526b8196807032aadfb",
    ),
    (
        "math_add.rgba",
        "7a63544aa1916fb0922d7ffb22c0b4d7d063f4157e55a82b4176d3de0ab7e441",
    ),
    (
        "math_add.png",
        "d5d0b452f87040f81f00ed8582679799a8db6f1f7c14d65c94a1cad88cc26420",
    ),
    (
        "math_sub.rgba",
        "6cada40b058276e174648c94611733a9f5e7c5f3511ecc4d22e77234baae12c4",
    ),
    (
        "math_sub.png",
        "db0845801f05e9cccd3bb81136a7214aa7b91c8cc939838ecf37b571698d1a48",
    ),
    (
        "math_wide_600x300.rgba",
        "e24e9aa7bf54b7c40dd2517a073a18c7e9efafe7eec3d669c38d85039b962d0d",
    ),
    (
        "math_wide_600x300.png",
        "c1a56de725b2441b3807d92088367290476ed01156022d6147b7afa57de2997a",
    ),
    (
        "glyphs_only_default.rgba",
        "7478c86c8fc89ab95e2b1c1a838d538aecb6be7a1397af69ace1eba82ff960b7",
    ),
    (
        "glyphs_only_math_transparent.rgba",
        "e5b90f1fc646a37b0b2cf4f0d5728fd904f03864a099345798f57ac0a1eb61b0",
    ),
    (
        "code_layer_default.rgba",
        "30878b642fff2c4bbaff1c12a9cd0435f022da05248d759f7d804569796560a7",
    ),
    (
        "code_layer_default.layer",
        "d969928b28abbf72c798045a17f9fd151c607efcdc4848ab5b24ba099a96e094",
    ),
    (
        "code_layer_600x300.rgba",
        "6f808b7c171415c1b9eb53a6f3b8f606c3d476c4d2c18d24a63aa5b1ebda6549",
    ),
    (
        "code_layer_600x300.layer",
        "964103927339c0f2aa9551deea407fb0ba14111511b9e7a39856e9ea1250a2b3",
    ),
];

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `name hash` lines for every case (several per case: pixels, PNG, layer).
fn hashes() -> Vec<(String, String)> {
    let r = Renderer::builtin();
    let mut out = Vec::new();
    for case in CASES {
        let mut cfg = SceneConfig::default();
        (case.cfg)(&mut cfg);
        let challenge = Challenge {
            display: case.display.into(),
            answer: String::new(),
        };
        let (w, h) = case.size;
        let mut rng = StdRng::seed_from_u64(case.seed);
        match case.mode {
            Mode::Full => {
                let img = r.render_image(&cfg, &challenge, w, h, &mut rng).unwrap();
                let png = encode_png(&img, cfg.background.is_none()).unwrap();
                out.push((format!("{}.rgba", case.name), sha(img.as_raw())));
                out.push((format!("{}.png", case.name), sha(&png)));
            }
            Mode::GlyphsOnly => {
                let img = r
                    .render_glyphs_only(&cfg, &challenge, w, h, &mut rng)
                    .unwrap();
                out.push((format!("{}.rgba", case.name), sha(img.as_raw())));
            }
            Mode::CodeLayer => {
                let (img, layer) = r
                    .render_with_code_layer(&cfg, &challenge, w, h, &mut rng)
                    .unwrap();
                out.push((format!("{}.rgba", case.name), sha(img.as_raw())));
                out.push((format!("{}.layer", case.name), sha(layer.as_raw())));
            }
        }
    }
    out
}

#[test]
fn renders_match_the_recorded_hashes() {
    let actual = hashes();
    let table: String = actual
        .iter()
        .map(|(name, hash)| format!("    (\"{name}\", \"{hash}\"),\n"))
        .collect();
    let expected: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(n, h)| (n.to_string(), h.to_string()))
        .collect();
    assert!(
        actual == expected,
        "rendering changed; if that is meant, the new table is:\n{table}"
    );
}
