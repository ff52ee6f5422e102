//! The language of `errMsg`: Chinese by default (as uni-captcha), English
//! when the client's `Accept-Language` prefers it.

/// The language of a client-facing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// Reads an `Accept-Language` value (RFC 9110 q-values). English wins
    /// only when an `en` range has a strictly higher weight than every `zh`
    /// range, or when no `zh` range is listed and `en` is.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::Zh;
        };
        let mut best_en: Option<f32> = None;
        let mut best_zh: Option<f32> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if weight <= 0.0 {
                continue;
            }
            let primary = tag.split('-').next().unwrap_or("");
            let slot = match primary {
                "en" => &mut best_en,
                "zh" => &mut best_zh,
                _ => continue,
            };
            if slot.is_none_or(|w| weight > w) {
                *slot = Some(weight);
            }
        }
        match (best_en, best_zh) {
            (Some(en), Some(zh)) if en > zh => Lang::En,
            (Some(_), None) => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// `zh` or `en`, whichever is this language.
    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}
