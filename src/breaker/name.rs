//! The service name as errors carry it: short names are copied inline, so rejecting a call
//! touches no shared reference count; long names fall back to a shared string.

use std::fmt;
use std::sync::Arc;

/// Bytes kept inline: with the length and the tag the whole name is 24 bytes, as small as the
/// shared form, and it covers every provider name of the seed with room to spare.
const INLINE: usize = 22;

#[derive(Clone)]
pub(crate) enum ServiceName {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl ServiceName {
    pub(crate) fn new(name: &Arc<str>) -> Self {
        let raw = name.as_bytes();
        match u8::try_from(raw.len()) {
            Ok(len) if raw.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..raw.len()].copy_from_slice(raw);
                ServiceName::Inline { len, bytes }
            }
            _ => ServiceName::Shared(Arc::clone(name)),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes came from a `str` and were cut at its full length, so they are UTF-8.
            ServiceName::Inline { len, bytes } => {
                std::str::from_utf8(bytes.get(..usize::from(*len)).unwrap_or_default())
                    .unwrap_or_default()
            }
            ServiceName::Shared(name) => name,
        }
    }
}

impl fmt::Debug for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_inline_and_long_ones_shared() {
        for name in [
            "",
            "mpesa",
            "africastalking",
            "ü-ñ-名前",
            &"x".repeat(31),
            &"y".repeat(32),
            &"é".repeat(40),
        ] {
            let shared: Arc<str> = Arc::from(name);
            let stored = ServiceName::new(&shared);
            assert_eq!(stored.as_str(), name);
            assert_eq!(
                matches!(stored, ServiceName::Inline { .. }),
                name.len() <= INLINE,
                "{name}"
            );
        }
    }
}
