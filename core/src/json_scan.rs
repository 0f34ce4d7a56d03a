//! A zero-allocation JSON scanner for one line.
//!
//! Validating a batch file must run at memory speed, so instead of building a DOM per line
//! the rules walk the line with this scanner: every byte is checked against the JSON
//! grammar, but only the few fields the rules look at are decoded. Message contents (most of
//! the bytes) are skipped with `memchr`. The input must already be valid UTF-8.

use std::borrow::Cow;

/// Deepest nesting accepted (serde_json's default recursion limit).
pub const MAX_DEPTH: u32 = 128;

/// Why a line is not JSON, and where (byte offset into the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub what: &'static str,
}

/// Boxed so results stay small enough to return in registers (errors are rare: at most
/// one per line).
pub type Scan<T> = Result<T, Box<SyntaxError>>;

/// The kind of the value at the scanner's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// A JSON string as it stands in the line: borrowed when it has no escapes.
#[derive(Debug, Clone, Copy)]
pub struct RawStr<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> RawStr<'a> {
    /// The decoded text. Escapes were checked while scanning, so decoding cannot fail.
    #[inline]
    pub fn decode(&self) -> Cow<'a, str> {
        // SAFETY: the scanner only runs on `&str` lines (see `Scanner::new`), and a string's
        // bounds are ASCII quotes, which never fall inside a multi-byte sequence.
        let text = unsafe { std::str::from_utf8_unchecked(self.raw) };
        if self.escaped {
            Cow::Owned(unescape(text))
        } else {
            Cow::Borrowed(text)
        }
    }

    /// Compares with a plain (escape-free) key without decoding. Inlined so the key's
    /// length is a constant and the comparison compiles to a few integer compares.
    #[inline(always)]
    pub fn is(&self, key: &str) -> bool {
        if self.escaped {
            self.decode() == key
        } else {
            self.raw == key.as_bytes()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// False when the text surely holds something besides whitespace; true when it may be
    /// empty or whitespace once decoded. Stops at the first byte that settles it: for
    /// ordinary text, the first one.
    #[inline]
    pub fn maybe_blank(&self) -> bool {
        let mut i = 0;
        while let Some(&b) = self.raw.get(i) {
            match b {
                b' ' | b'\t' => i += 1,
                b'\\' => match self.raw.get(i + 1) {
                    Some(b'n' | b'r' | b't') => i += 2,
                    // A \u escape may be a space: not decoded here, so "maybe".
                    Some(b'u') => return true,
                    _ => return false,
                },
                _ => return false,
            }
        }
        true
    }
}

pub struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Scanner<'a> {
    /// A scanner over one line, which is valid UTF-8 (hence the `&str`).
    pub fn new(line: &'a str) -> Self {
        Self { text: line, b: line.as_bytes(), pos: 0, depth: 0 }
    }

    #[cold]
    #[inline(never)]
    fn err<T>(&self, what: &'static str) -> Scan<T> {
        let what = if self.pos >= self.b.len() { "unexpected end of line (truncated JSON?)" } else { what };
        Err(Box::new(SyntaxError { offset: self.pos, what }))
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// After the top-level value: only whitespace may follow.
    pub fn finish(&mut self) -> Scan<()> {
        self.skip_ws();
        if self.pos < self.b.len() {
            return self.err("unexpected characters after the JSON value");
        }
        Ok(())
    }

    /// The kind of the next value (skipping whitespace), without consuming it.
    #[inline(always)]
    pub fn peek(&mut self) -> Scan<Kind> {
        self.skip_ws();
        match self.b.get(self.pos) {
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Number),
            Some(b't' | b'f') => Ok(Kind::Bool),
            Some(b'n') => Ok(Kind::Null),
            Some(_) => self.err("expected a JSON value"),
            None => self.err("unexpected end of line: expected a JSON value"),
        }
    }

    #[inline(always)]
    fn enter(&mut self) -> Scan<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("nesting deeper than 128 levels");
        }
        Ok(())
    }

    /// Walks an object, calling `f` with each key while the scanner stands on its value;
    /// `f` must consume the value.
    pub fn object(&mut self, mut f: impl FnMut(&mut Self, RawStr<'a>) -> Scan<()>) -> Scan<()> {
        self.skip_ws();
        if self.b.get(self.pos) != Some(&b'{') {
            return self.err("expected '{'");
        }
        self.pos += 1;
        self.enter()?;
        self.skip_ws();
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.b.get(self.pos) != Some(&b'"') {
                return self.err("expected a string key");
            }
            let key = self.string()?;
            self.skip_ws();
            if self.b.get(self.pos) != Some(&b':') {
                return self.err("expected ':' after the key");
            }
            self.pos += 1;
            f(self, key)?;
            self.skip_ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or '}' in the object"),
            }
        }
    }

    /// Walks an array, calling `f` with each index while the scanner stands on the element.
    pub fn array(&mut self, mut f: impl FnMut(&mut Self, usize) -> Scan<()>) -> Scan<()> {
        self.skip_ws();
        if self.b.get(self.pos) != Some(&b'[') {
            return self.err("expected '['");
        }
        self.pos += 1;
        self.enter()?;
        self.skip_ws();
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut i = 0;
        loop {
            f(self, i)?;
            i += 1;
            self.skip_ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or ']' in the array"),
            }
        }
    }

    /// Reads a string (the scanner must stand on its opening quote, after whitespace).
    ///
    /// Inlined for the common short string (a key, an id) that ends, unescaped, within 16
    /// bytes: its result then stays in registers. Longer ones take `long_string`.
    #[inline(always)]
    pub fn string(&mut self) -> Scan<RawStr<'a>> {
        self.skip_ws();
        if self.b.get(self.pos) != Some(&b'"') {
            return self.err("expected a string");
        }
        self.pos += 1;
        let start = self.pos;
        #[cfg(target_arch = "x86_64")]
        if start + 16 <= self.b.len() {
            // SAFETY: SSE2 is baseline on x86_64; `b[start..start + 16]` is in bounds.
            let mask = unsafe { x86::special_mask16(self.b.as_ptr().add(start)) };
            if mask != 0 {
                let end = start + mask.trailing_zeros() as usize;
                if self.b[end] == b'"' {
                    self.pos = end + 1;
                    return Ok(RawStr { raw: &self.b[start..end], escaped: false });
                }
            }
        }
        match self.long_string() {
            Ok(escaped) => Ok(RawStr { raw: &self.b[start..self.pos - 1], escaped }),
            Err(e) => Err(e),
        }
    }

    /// The rest of `string`, from the first byte after the opening quote (where the scanner
    /// stands): moves past the closing quote and says whether there were escapes.
    #[inline(never)]
    fn long_string(&mut self) -> Scan<bool> {
        let mut escaped = false;
        loop {
            // The hot loop: one pass to the next quote, backslash or control character.
            let Some(n) = find_special(&self.b[self.pos..]) else {
                self.pos = self.b.len();
                return self.err("unterminated string");
            };
            self.pos += n;
            match self.b[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return self.err("control character in a string (must be escaped)"),
            }
        }
    }

    /// Checks one escape sequence (the scanner stands on its backslash).
    fn escape(&mut self) -> Scan<()> {
        self.pos += 1;
        match self.b.get(self.pos) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                if (0xD800..0xDC00).contains(&unit) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    if self.b.get(self.pos..self.pos + 2) != Some(b"\\u") {
                        return self.err("unpaired surrogate in a \\u escape");
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return self.err("unpaired surrogate in a \\u escape");
                    }
                } else if (0xDC00..0xE000).contains(&unit) {
                    return self.err("unpaired surrogate in a \\u escape");
                }
                Ok(())
            }
            _ => self.err("invalid escape in a string"),
        }
    }

    fn hex4(&mut self) -> Scan<u32> {
        let Some(digits) = self.b.get(self.pos..self.pos + 4) else {
            return self.err("truncated \\u escape");
        };
        let mut v = 0u32;
        for &d in digits {
            let x = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return self.err("invalid hex digit in a \\u escape"),
            };
            v = v * 16 + u32::from(x);
        }
        self.pos += 4;
        Ok(v)
    }

    /// Reads a number, returning its text.
    pub fn number(&mut self) -> Scan<&'a str> {
        self.skip_ws();
        let start = self.pos;
        let b = self.b;
        let digits = |p: &mut usize| {
            let s = *p;
            while b.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            *p - s
        };
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        match b.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => {
                digits(&mut p);
            }
            _ => {
                self.pos = p;
                return self.err("invalid number");
            }
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            if digits(&mut p) == 0 {
                self.pos = p;
                return self.err("invalid number: digits expected after '.'");
            }
        }
        if matches!(b.get(p), Some(b'e' | b'E')) {
            p += 1;
            if matches!(b.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            if digits(&mut p) == 0 {
                self.pos = p;
                return self.err("invalid number: digits expected in the exponent");
            }
        }
        self.pos = p;
        // Only ASCII digits and signs were consumed, so both ends are char boundaries.
        Ok(self.text.get(start..p).unwrap_or_default())
    }

    fn literal(&mut self, word: &'static [u8]) -> Scan<()> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err("invalid literal (expected true, false or null)")
        }
    }

    /// Reads a `null` (the scanner must stand on it).
    pub fn literal_null(&mut self) -> Scan<()> {
        self.skip_ws();
        self.literal(b"null")
    }

    /// Checks and skips the next value, returning its kind.
    pub fn skip(&mut self) -> Scan<Kind> {
        let kind = self.peek()?;
        match kind {
            Kind::Object => self.object(|s, _| s.skip().map(drop))?,
            Kind::Array => self.array(|s, _| s.skip().map(drop))?,
            Kind::String => {
                self.string()?;
            }
            Kind::Number => {
                self.number()?;
            }
            Kind::Bool => {
                let word: &[u8] = if self.b[self.pos] == b't' { b"true" } else { b"false" };
                self.literal(word)?;
            }
            Kind::Null => self.literal(b"null")?,
        }
        Ok(kind)
    }
}

/// Index of the first `"`, `\` or control character (< 0x20): where a JSON string's plain
/// run ends. Also used to escape strings when writing JSON.
///
/// The first 16 bytes are looked at inline (keys and short values end there); longer runs
/// (message contents) go to a 32-bytes-a-step AVX2 loop where the CPU has it.
#[inline]
pub fn find_special(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if b.len() >= 16 {
            // SAFETY: SSE2 is part of the x86_64 baseline; the load reads b[..16], in bounds.
            let mask = unsafe { x86::special_mask16(b.as_ptr()) };
            if mask != 0 {
                return Some(mask.trailing_zeros() as usize);
            }
            return x86::find_special_from(b, 16);
        }
    }
    find_special_scalar(b, 0)
}

fn find_special_scalar(b: &[u8], from: usize) -> Option<usize> {
    b[from..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| p + from)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Bit i set when `p[i]` (i < 16) is a quote, a backslash or a control character.
    ///
    /// # Safety
    /// `p..p+16` must be readable.
    #[inline(always)]
    pub unsafe fn special_mask16(p: *const u8) -> u32 {
        let x = _mm_loadu_si128(p.cast());
        let max_ctrl = _mm_set1_epi8(0x1f);
        // x <= 0x1f (unsigned) <=> max(x, 0x1f) == 0x1f
        let ctrl = _mm_cmpeq_epi8(_mm_max_epu8(x, max_ctrl), max_ctrl);
        let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), ctrl)) as u32
    }

    /// `find_special` from `from` on, `from <= b.len()`.
    #[inline(never)]
    pub fn find_special_from(b: &[u8], from: usize) -> Option<usize> {
        if b.len() - from >= 32 && std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, just checked.
            return unsafe { find_special_avx2(b, from) };
        }
        let mut i = from;
        while i + 16 <= b.len() {
            // SAFETY: SSE2 is baseline on x86_64; `b[i..i + 16]` is in bounds.
            let mask = unsafe { special_mask16(b.as_ptr().add(i)) };
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
        super::find_special_scalar(b, i)
    }

    /// Like `special_mask16`, for 32 bytes.
    ///
    /// # Safety
    /// The CPU must support AVX2; `p..p+32` must be readable.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn special_mask32(p: *const u8) -> u32 {
        let x = _mm256_loadu_si256(p.cast());
        let max_ctrl = _mm256_set1_epi8(0x1f);
        let ctrl = _mm256_cmpeq_epi8(_mm256_max_epu8(x, max_ctrl), max_ctrl);
        let quote = _mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'"' as i8));
        let backslash = _mm256_cmpeq_epi8(x, _mm256_set1_epi8(b'\\' as i8));
        _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(quote, backslash), ctrl)) as u32
    }

    /// # Safety
    /// The CPU must support AVX2; `from + 32 <= b.len()`.
    #[target_feature(enable = "avx2")]
    unsafe fn find_special_avx2(b: &[u8], from: usize) -> Option<usize> {
        let mut i = from;
        while i + 32 <= b.len() {
            // SAFETY: AVX2 per the contract; `b[i..i + 32]` is in bounds.
            let mask = special_mask32(b.as_ptr().add(i));
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 32;
        }
        if i == b.len() {
            return None;
        }
        // The tail: one last load ending at the end of `b`, overlapping bytes already seen
        // (which hold no hit, so the first set bit is past them).
        let last = b.len() - 32; // >= from, so in bounds and past the bytes seen before
                                 // SAFETY: AVX2 per the contract; `b[last..]` is 32 bytes.
        let mask = special_mask32(b.as_ptr().add(last)) >> (i - last);
        (mask != 0).then(|| i + mask.trailing_zeros() as usize)
    }
}

/// Decodes the escapes of a string the scanner checked, copying the runs between
/// backslashes whole (nearly every chat answer has a `\n`, so this is the common path).
fn unescape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(n) = memchr::memchr(b'\\', &b[i..]) {
        out.push_str(&raw[i..i + n]);
        i += n;
        let c = match b.get(i + 1) {
            Some(b'n') => '\n',
            Some(b't') => '\t',
            Some(b'r') => '\r',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'u') => {
                let hex = |at: usize| raw.get(at..at + 4).and_then(|h| u32::from_str_radix(h, 16).ok());
                let unit = hex(i + 2).unwrap_or(0xFFFD);
                i += 6;
                let cp = if (0xD800..0xDC00).contains(&unit) && b.get(i..i + 2) == Some(b"\\u") {
                    let low = hex(i + 2).unwrap_or(0xDC00);
                    i += 6;
                    0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                } else {
                    unit
                };
                out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                continue;
            }
            Some(&other) => other as char, // `"`, `\`, `/`
            None => break,
        };
        out.push(c);
        i += 2;
    }
    out.push_str(&raw[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) -> Scan<Kind> {
        let mut sc = Scanner::new(s);
        let k = sc.skip()?;
        sc.finish()?;
        Ok(k)
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        let good = [
            r#"{"a":[1,-2.5e+3,0,true,false,null,"x\"y\\\u00e9\ud83d\ude00"],"b":{}}"#,
            "  [ ]  ",
            r#""\/\b\f\n\r\t""#,
            "-0.0e0",
            r#"{"k":"é日本"}"#,
        ];
        for g in good {
            assert!(serde_json::from_str::<serde_json::Value>(g).is_ok(), "{g}");
            assert!(check(g).is_ok(), "{g}");
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        let bad = [
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "1e",
            "-",
            "+1",
            "tru",
            "nul",
            "\"abc",
            "\"a\u{1}b\"",
            "\"a\u{1f}bcdefghijklmnopqrstuvwxyz\"",
            "\"0123456789abcdef\n\"",
            r#""\x""#,
            r#""\ud800""#,
            r#""\udc00x""#,
            "{a:1}",
            "[1 2]",
            "{\"a\" 1}",
            "1 2",
            "",
            "NaN",
            r#""\u12g4""#,
        ];
        for b in bad {
            assert!(serde_json::from_str::<serde_json::Value>(b).is_err(), "serde accepts {b:?}");
            assert!(check(b).is_err(), "scanner accepts {b:?}");
        }
    }

    #[test]
    fn find_special_matches_the_scalar_definition() {
        let mut data: Vec<u8> = (0..=255u8).collect();
        data.extend(b"plain ascii text that is longer than sixteen bytes");
        for start in 0..data.len() {
            let want = data[start..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            assert_eq!(find_special(&data[start..]), want, "from {start}");
        }
        assert_eq!(find_special(b"no specials here at all, just text"), None);
    }

    #[test]
    fn find_special_in_long_runs() {
        // Every length and hit position across the 16-byte inline check, the 32-byte
        // steps and the overlapping tail load.
        for len in 0..140 {
            let plain = vec![b'a'; len];
            assert_eq!(find_special(&plain), None, "len {len}");
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut b = plain.clone();
                    b[at] = special;
                    assert_eq!(find_special(&b), Some(at), "len {len} at {at} {special}");
                }
            }
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(100_000);
        let e = check(&deep).unwrap_err();
        assert!(e.what.contains("nesting"));
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(check(&ok).is_ok());
    }

    #[test]
    fn decodes_escapes() {
        let mut sc = Scanner::new(r#""a\n\u00e9\ud83d\ude00\"""#);
        let s = sc.string().unwrap();
        assert_eq!(s.decode(), "a\n\u{e9}\u{1F600}\"");
        assert!(!Scanner::new(r#""plain""#).string().unwrap().escaped);
    }

    #[test]
    fn unescape_matches_serde_json() {
        let cases = [
            r#""plain""#,
            r#""a\nb\"c\\d\/e\tf\r\b\f""#,
            r#""\u00e9\u65e5 \ud83d\ude00 end""#,
            r#""\n""#,
            r#""é日本\n""#,
            r#""\u0000x""#,
        ];
        for c in cases {
            let want: String = serde_json::from_str(c).unwrap();
            let mut sc = Scanner::new(c);
            let got = sc.string().unwrap().decode();
            assert_eq!(got, want, "{c}");
        }
    }
}
