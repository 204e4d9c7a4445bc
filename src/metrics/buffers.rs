//! Keeps the buffers of the last `/metrics` answer for the next one. For 10,000 services they
//! are tens of megabytes, and writing into fresh memory costs the kernel a page fault and a
//! cleared page every 4 KiB (a quarter of a scrape's time, measured); a kept buffer is
//! already mapped.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::exposition::FAMILIES;

/// How many runs of services a large exposition is written in at most.
pub(crate) const MAX_RUNS: usize = 64;

/// At most one spare buffer per per-service family and run (a second scrape at the same
/// moment gets fresh ones, and only one of them is kept).
#[derive(Debug)]
pub(crate) struct Buffers {
    spare: Mutex<Vec<Option<Vec<u8>>>>,
}

impl Default for Buffers {
    fn default() -> Self {
        Self {
            spare: Mutex::new(vec![None; FAMILIES * MAX_RUNS]),
        }
    }
}

impl Buffers {
    /// The slot of `family`'s text in run `run`.
    pub(crate) fn slot(run: usize, family: usize) -> usize {
        run * FAMILIES + family
    }

    /// A buffer for `slot` with room for `size` bytes: kept from the last scrape (its old
    /// text, still initialised, is written over), or new and empty. A kept buffer too small,
    /// or four times larger than needed (a reload dropped most services), is let go.
    pub(crate) fn take(&self, slot: usize, size: usize) -> Vec<u8> {
        let kept = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(slot)
            .and_then(Option::take)
            .filter(|buffer| (size..=size.saturating_mul(4)).contains(&buffer.capacity()));
        kept.unwrap_or_else(|| Vec::with_capacity(size))
    }

    fn give_back(&self, slot: usize, buffer: Vec<u8>) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(empty @ None) = spare.get_mut(slot) {
            *empty = Some(buffer);
        }
    }
}

/// One piece of an exposition: valid UTF-8 text. A per-service family's piece goes back to
/// its [`Buffers`] when dropped (after the response has sent it).
#[derive(Debug)]
pub struct Piece {
    /// The text, and after it room the next scrape writes into.
    buffer: Vec<u8>,
    /// How many bytes of `buffer` are the text.
    len: usize,
    /// Where the buffer goes back to: the buffers and the slot.
    home: Option<(Weak<Buffers>, usize)>,
}

impl Piece {
    /// The first `len` bytes of a buffer of `buffers` taken for `slot`.
    pub(crate) fn pooled(buffer: Vec<u8>, len: usize, buffers: &Arc<Buffers>, slot: usize) -> Self {
        Self {
            len: len.min(buffer.len()),
            buffer,
            home: Some((Arc::downgrade(buffers), slot)),
        }
    }

    /// A piece that is simply freed.
    pub(crate) fn owned(text: Vec<u8>) -> Self {
        Self {
            len: text.len(),
            buffer: text,
            home: None,
        }
    }
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        if let Some((buffers, slot)) = self.home.take()
            && let Some(buffers) = buffers.upgrade()
        {
            buffers.give_back(slot, std::mem::take(&mut self.buffer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_piece_leaves_its_buffer_for_the_next_scrape() {
        let buffers = Arc::new(Buffers::default());
        let mut text = buffers.take(3, 1 << 20);
        assert!(text.capacity() >= 1 << 20);
        let line = b"breakerd_calls_total 1\n";
        text.extend_from_slice(line);
        text.extend_from_slice(b"room past the text");
        let address = text.as_ptr();
        let piece = Piece::pooled(text, line.len(), &buffers, 3);
        assert_eq!(piece.as_ref(), line, "only the text is sent");
        drop(piece);
        let again = buffers.take(3, 1 << 19);
        assert_eq!(again.as_ptr(), address, "the same memory");
        assert!(again.capacity() >= 1 << 20);
        let fresh = buffers.take(3, 100);
        assert_ne!(fresh.as_ptr(), address, "taken once only");
    }

    #[test]
    fn a_kept_buffer_far_larger_than_needed_is_let_go() {
        let buffers = Arc::new(Buffers::default());
        let text = buffers.take(0, 1 << 20);
        drop(Piece::pooled(text, 0, &buffers, 0));
        assert!(
            buffers.take(0, 1 << 18).capacity() >= 1 << 20,
            "four times: kept"
        );
        let text = buffers.take(0, 1 << 20);
        drop(Piece::pooled(text, 0, &buffers, 0));
        assert!(
            buffers.take(0, 1000).capacity() < 1 << 20,
            "a thousand times: let go"
        );
        let text = buffers.take(0, 1000);
        drop(Piece::pooled(text, 0, &buffers, 0));
        assert!(
            buffers.take(0, 2000).capacity() >= 2000,
            "too small: let go"
        );
    }
}
