//! Where an upstream answer's body ends, found as its bytes pass through unchanged: none, a
//! `Content-Length`, chunked (RFC 9112 7.1: sizes, extensions, trailers), or the connection's
//! close. The payload inside the framing is told apart on the way, for the judge.

/// How an answer's body is framed, and how far through it the bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (a `HEAD`, 204, 304).
    Empty,
    /// This many bytes still to come.
    Length(u64),
    /// Chunked, at this point of its grammar.
    Chunked(Chunks),
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// Where in the chunked grammar the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunks {
    /// Reading a chunk's size (this much so far, in this many hex digits).
    Size { size: u64, digits: u8 },
    /// After the size: an extension or whitespace, up to the line's end.
    Extension { size: u64 },
    /// The line feed ending the size line.
    SizeLineFeed { size: u64 },
    /// This many bytes of chunk data to come.
    Data(u64),
    /// The carriage return after a chunk's data.
    DataReturn,
    /// The line feed after a chunk's data.
    DataLineFeed,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// The line feed of the final empty line.
    LastLineFeed,
}

/// A body's framing broken by the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the answer's chunked framing is malformed")]
pub(crate) struct Malformed;

/// What the bytes walked hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walked {
    /// All of them belong to the body, which goes on.
    More,
    /// The body ends after this many of them (any others are not the body's).
    Ended(usize),
}

/// The most hex digits a chunk size may have (16: a `u64`).
const MOST_DIGITS: u8 = 16;

impl Framing {
    /// A chunked body, at its start.
    pub(crate) fn chunked() -> Self {
        Framing::Chunked(Chunks::Size { size: 0, digits: 0 })
    }

    /// Whether the body has ended (nothing more to read).
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Framing::Empty | Framing::Length(0))
    }

    /// Walks `bytes`, the next of the body as they came: hands each run of payload to
    /// `payload`, and says where the body ends if it does.
    ///
    /// # Errors
    /// Chunked framing that breaks the grammar.
    pub(crate) fn walk(
        &mut self,
        bytes: &[u8],
        mut payload: impl FnMut(&[u8]),
    ) -> Result<Walked, Malformed> {
        match self {
            Framing::Empty => Ok(Walked::Ended(0)),
            Framing::Length(left) => {
                let take = usize::try_from(*left).map_or(bytes.len(), |left| left.min(bytes.len()));
                if take > 0 {
                    payload(&bytes[..take]);
                }
                *left -= take as u64;
                Ok(if *left == 0 {
                    Walked::Ended(take)
                } else {
                    Walked::More
                })
            }
            Framing::UntilClose => {
                if !bytes.is_empty() {
                    payload(bytes);
                }
                Ok(Walked::More)
            }
            Framing::Chunked(state) => {
                let mut at = 0;
                while at < bytes.len() {
                    if let Chunks::Data(left) = *state {
                        let take = usize::try_from(left)
                            .map_or(bytes.len() - at, |left| left.min(bytes.len() - at));
                        payload(&bytes[at..at + take]);
                        at += take;
                        let left = left - take as u64;
                        *state = if left == 0 {
                            Chunks::DataReturn
                        } else {
                            Chunks::Data(left)
                        };
                        continue;
                    }
                    let byte = bytes[at];
                    at += 1;
                    match step(*state, byte)? {
                        Some(next) => *state = next,
                        None => {
                            *self = Framing::Length(0);
                            return Ok(Walked::Ended(at));
                        }
                    }
                }
                Ok(Walked::More)
            }
        }
    }
}

/// The chunked grammar's next state after `byte` (`None`: the body has ended).
fn step(state: Chunks, byte: u8) -> Result<Option<Chunks>, Malformed> {
    let next = match state {
        Chunks::Size { size, digits } => match hex(byte) {
            Some(value) if digits < MOST_DIGITS => Chunks::Size {
                size: (size << 4) | u64::from(value),
                digits: digits + 1,
            },
            Some(_) => return Err(Malformed),
            None if digits == 0 => return Err(Malformed),
            None => match byte {
                b'\r' => Chunks::SizeLineFeed { size },
                b';' | b' ' | b'\t' => Chunks::Extension { size },
                _ => return Err(Malformed),
            },
        },
        Chunks::Extension { size } => match byte {
            b'\r' => Chunks::SizeLineFeed { size },
            b'\n' => return Err(Malformed),
            _ => Chunks::Extension { size },
        },
        Chunks::SizeLineFeed { size } => match (byte, size) {
            (b'\n', 0) => Chunks::TrailerStart,
            (b'\n', size) => Chunks::Data(size),
            _ => return Err(Malformed),
        },
        // Data runs are taken whole by `Framing::walk`, never byte by byte.
        Chunks::Data(_) => return Err(Malformed),
        Chunks::DataReturn => match byte {
            b'\r' => Chunks::DataLineFeed,
            _ => return Err(Malformed),
        },
        Chunks::DataLineFeed => match byte {
            b'\n' => Chunks::Size { size: 0, digits: 0 },
            _ => return Err(Malformed),
        },
        Chunks::TrailerStart => match byte {
            b'\r' => Chunks::LastLineFeed,
            b'\n' => return Err(Malformed),
            _ => Chunks::Trailer,
        },
        Chunks::Trailer => match byte {
            b'\n' => Chunks::TrailerStart,
            _ => Chunks::Trailer,
        },
        Chunks::LastLineFeed => match byte {
            b'\n' => return Ok(None),
            _ => return Err(Malformed),
        },
    };
    Ok(Some(next))
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `wire` in pieces of `piece` bytes: the payload, and where the body ended.
    fn walk(
        framing: Framing,
        wire: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, Option<usize>), Malformed> {
        let mut framing = framing;
        let mut payload = Vec::new();
        let mut offset = 0;
        for part in wire.chunks(piece) {
            match framing.walk(part, |data| payload.extend_from_slice(data))? {
                Walked::More => offset += part.len(),
                Walked::Ended(used) => return Ok((payload, Some(offset + used))),
            }
        }
        Ok((payload, None))
    }

    #[test]
    fn chunked_bodies_end_where_the_grammar_says_in_any_pieces() {
        let wire = b"4;name=value\r\nWiki\r\n5 \r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, wire.len()] {
            let (payload, ended) = walk(Framing::chunked(), wire, piece).unwrap();
            assert_eq!(payload, b"Wikipedia in\r\n\r\nchunks.", "pieces of {piece}");
            assert_eq!(ended, Some(wire.len() - 4), "pieces of {piece}");
        }
        let (payload, ended) = walk(Framing::chunked(), b"0\r\n\r\n", 1).unwrap();
        assert!(payload.is_empty());
        assert_eq!(ended, Some(5));
        let (_, ended) = walk(Framing::chunked(), b"5\r\nhel", 2).unwrap();
        assert_eq!(ended, None, "unfinished");
    }

    #[test]
    fn broken_chunked_framing_is_malformed() {
        for wire in [
            &b"x\r\n"[..],
            b"\r\n",
            b"4\r\nWikiXX",
            b"4\nWiki\r\n",
            b"11111111111111111\r\n",
            b"0\r\n\n",
        ] {
            assert_eq!(
                walk(Framing::chunked(), wire, 1),
                Err(Malformed),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn lengths_and_closes_take_what_they_say() {
        let (payload, ended) = walk(Framing::Length(5), b"helloNEXT", 2).unwrap();
        assert_eq!((payload.as_slice(), ended), (&b"hello"[..], Some(5)));
        let (payload, ended) = walk(Framing::UntilClose, b"all of it", 4).unwrap();
        assert_eq!((payload.as_slice(), ended), (&b"all of it"[..], None));
        assert!(Framing::Empty.is_done());
        assert!(Framing::Length(0).is_done());
        assert!(!Framing::Length(1).is_done());
    }
}
