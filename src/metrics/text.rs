//! The text a scrape writes: pieces padded so that they are copied in whole chunks (fixed-size
//! moves, not calls to `memcpy`), the growing text they are copied into, and numbers and label
//! values written as the text formats want them.

/// Copies go in chunks of this many bytes: every text copied is padded with zeros to whole
/// chunks, and every text written into keeps more than a chunk of room past its end, so a line
/// is a few fixed-size moves rather than calls to `memcpy` (which were a third of a scrape).
pub(crate) const CHUNK: usize = 32;

/// A text padded with zeros to whole [`CHUNK`]s (at least one).
#[derive(Debug, Default)]
pub(crate) struct Padded {
    bytes: Vec<u8>,
    pub(crate) len: usize,
}

impl Padded {
    /// The text, without its padding (for tests).
    #[cfg(test)]
    pub(crate) fn bytes_for_test(&self) -> Vec<u8> {
        self.bytes[..self.len].to_vec()
    }

    pub(crate) fn new(text: &[u8]) -> Self {
        let mut bytes = text.to_vec();
        bytes.resize(text.len().next_multiple_of(CHUNK).max(CHUNK), 0);
        Self {
            bytes,
            len: text.len(),
        }
    }
}

/// One family's text while it is written: the first `len` of `bytes` are the text, the rest
/// is initialised room (what an earlier scrape wrote, or zeros).
#[derive(Debug)]
pub(crate) struct Text {
    bytes: Vec<u8>,
    len: usize,
}

impl Text {
    /// An empty text written into `bytes` (whatever they hold is overwritten).
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self { bytes, len: 0 }
    }

    /// A whole text.
    pub(crate) fn whole(text: Vec<u8>) -> Self {
        Self {
            len: text.len(),
            bytes: text,
        }
    }

    /// The text.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The buffer, for the next text: its room stays initialised.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.bytes
    }

    /// Makes sure `more` bytes of text fit, with a chunk of room past them. The room is
    /// zeroed a step at a time as the text reaches it, so memory the text never reaches is
    /// never touched (the buffers are sized for the longest names and numbers).
    pub(crate) fn make_room(&mut self, more: usize) {
        /// How much room is zeroed at once.
        const STEP: usize = 4096;
        let needed = self.len + more + CHUNK;
        if needed > self.bytes.len() {
            let within = self.bytes.capacity().max(needed);
            self.bytes
                .resize((self.bytes.len() + STEP).clamp(needed, within), 0);
        }
    }

    /// Appends a padded text in whole chunks (the bytes copied past its end are room, and the
    /// next line overwrites them). The room for it was made with [`Text::make_room`].
    #[inline(always)]
    pub(crate) fn put(&mut self, padded: &[u8], len: usize) {
        let mut at = self.len;
        for chunk in padded[..len.next_multiple_of(CHUNK)].chunks_exact(CHUNK) {
            self.bytes[at..at + CHUNK].copy_from_slice(chunk);
            at += CHUNK;
        }
        self.len += len;
    }

    pub(crate) fn put_padded(&mut self, text: &Padded) {
        self.put(&text.bytes, text.len);
    }

    /// Appends any text, making room for it first.
    pub(crate) fn put_slice(&mut self, text: &[u8]) {
        self.make_room(text.len());
        self.bytes[self.len..self.len + text.len()].copy_from_slice(text);
        self.len += text.len();
    }
}

/// A number and the end of its line, padded for [`Text::put`]: at most 24 characters (ryu's
/// longest, or 20 digits and `.0`) and the newline.
pub(crate) type NumberLine = [u8; 2 * CHUNK];

/// Writes `value` and a newline at the start of `out`; returns how many bytes that is.
pub(crate) fn int_line(value: u64, out: &mut NumberLine) -> usize {
    let digits = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    let mut rest = value;
    for slot in out[..digits].iter_mut().rev() {
        *slot = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
    }
    out[digits] = b'\n';
    digits + 1
}

/// Writes a float as ryu does (`30.0`, `0.0123`, `1e-7`) and a newline at the start of `out`;
/// returns how many bytes that is. Whole numbers below 2^53 (timeouts, intervals, zeros) go
/// through the integer writer, which is several times faster.
pub(crate) fn float_line(value: f64, out: &mut NumberLine, floats: &mut ryu::Buffer) -> usize {
    /// Below this, a whole float is an exact integer and ryu writes it as `N.0`.
    const WHOLE_LIMIT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() < WHOLE_LIMIT && value.is_sign_positive() {
        // A positive whole number below 2^53 converts to u64 exactly.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let digits = int_line(value as u64, out) - 1;
        out[digits..digits + 3].copy_from_slice(b".0\n");
        return digits + 3;
    }
    let text = if value.is_finite() {
        floats.format_finite(value)
    } else if value.is_nan() {
        "NaN"
    } else if value > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    };
    let length = text.len();
    out[..length].copy_from_slice(text.as_bytes());
    out[length] = b'\n';
    length + 1
}

/// Escapes a label value for the text formats (backslash, double quote, newline).
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_ryu_writes_them() {
        for value in [
            0.0,
            -0.0,
            1.0,
            30.0,
            120.0,
            1_700_000_000.0,
            1_700_000_000.125,
            0.0123,
            1e-7,
            1e15,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e22,
            -30.0,
            -0.5,
        ] {
            let expected = format!("{}\n", ryu::Buffer::new().format_finite(value));
            assert_eq!(line(value), expected, "{value}");
        }
        assert_eq!(line(f64::NAN), "NaN\n");
        assert_eq!(line(f64::INFINITY), "+Inf\n");
        assert_eq!(line(f64::NEG_INFINITY), "-Inf\n");
    }

    fn line(value: f64) -> String {
        let mut out = [0; 2 * CHUNK];
        let length = float_line(value, &mut out, &mut ryu::Buffer::new());
        String::from_utf8_lossy(&out[..length]).into_owned()
    }

    #[test]
    fn integers_are_written_in_full() {
        for value in [0, 7, 10, 99, 100, 1_700_000_000, u64::MAX] {
            let mut out = [0; 2 * CHUNK];
            let length = int_line(value, &mut out);
            assert_eq!(&out[..length], format!("{value}\n").as_bytes());
        }
    }

    #[test]
    fn lines_copied_in_chunks_keep_exactly_their_text() {
        let mut text = Text::new(vec![b'#'; 8]);
        let pieces: [&[u8]; 4] = [b"head{service=\"", &[b'x'; 70], b"\"} ", b""];
        for piece in pieces {
            text.make_room(piece.len());
            text.put_padded(&Padded::new(piece));
        }
        let expected: Vec<u8> = pieces.concat();
        assert_eq!(text.as_bytes(), expected.as_slice());
        assert!(
            text.bytes.len() >= expected.len() + CHUNK,
            "room kept past the end"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label_value("mpesa"), "mpesa");
    }
}
