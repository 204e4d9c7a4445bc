//! Keeps the buffers of the last `/metrics` answer for the next one. For 10,000 services they
//! are tens of megabytes, and writing into fresh memory costs the kernel a page fault and a
//! cleared page every 4 KiB (a quarter of a scrape's time, measured); a kept buffer is
//! already mapped.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::exposition::FAMILIES;

/// How many parts a large exposition is written in at most, each on its own thread.
pub(crate) const MAX_PARTS: usize = 4;

/// At most one spare buffer per per-service family and part (a second scrape at the same
/// moment gets fresh ones, and only one of them is kept).
#[derive(Debug)]
pub(crate) struct Buffers {
    spare: Mutex<Vec<Option<Vec<u8>>>>,
}

impl Default for Buffers {
    fn default() -> Self {
        Self {
            spare: Mutex::new(vec![None; FAMILIES * MAX_PARTS]),
        }
    }
}

impl Buffers {
    /// The slot of `family`'s text in part `part`.
    pub(crate) fn slot(part: usize, family: usize) -> usize {
        part * FAMILIES + family
    }

    /// An empty buffer for `slot` that holds at least `capacity` bytes. A kept buffer four
    /// times larger than that (a reload dropped most services) is let go, so its memory goes
    /// back too.
    pub(crate) fn take(&self, slot: usize, capacity: usize) -> Vec<u8> {
        let kept = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(slot)
            .and_then(Option::take)
            .filter(|buffer| buffer.capacity() <= capacity.saturating_mul(4));
        let mut buffer = kept.unwrap_or_default();
        buffer.clear();
        buffer.reserve(capacity);
        buffer
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
    text: Vec<u8>,
    /// Where the buffer goes back to: the buffers and the slot.
    home: Option<(Weak<Buffers>, usize)>,
}

impl Piece {
    /// A piece written into a buffer of `buffers` taken for `slot`.
    pub(crate) fn pooled(text: Vec<u8>, buffers: &Arc<Buffers>, slot: usize) -> Self {
        Self {
            text,
            home: Some((Arc::downgrade(buffers), slot)),
        }
    }

    /// A piece that is simply freed.
    pub(crate) fn owned(text: Vec<u8>) -> Self {
        Self { text, home: None }
    }
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.text
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        if let Some((buffers, slot)) = self.home.take()
            && let Some(buffers) = buffers.upgrade()
        {
            buffers.give_back(slot, std::mem::take(&mut self.text));
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
        text.extend_from_slice(b"breakerd_calls_total 1\n");
        let address = text.as_ptr();
        drop(Piece::pooled(text, &buffers, 3));
        let again = buffers.take(3, 1 << 19);
        assert!(again.is_empty(), "handed back cleared");
        assert_eq!(again.as_ptr(), address, "the same memory");
        assert!(again.capacity() >= 1 << 20);
        let fresh = buffers.take(3, 100);
        assert_ne!(fresh.as_ptr(), address, "taken once only");
    }

    #[test]
    fn a_kept_buffer_far_larger_than_needed_is_let_go() {
        let buffers = Arc::new(Buffers::default());
        let text = buffers.take(0, 1 << 20);
        drop(Piece::pooled(text, &buffers, 0));
        assert!(
            buffers.take(0, 1 << 18).capacity() >= 1 << 20,
            "four times: kept"
        );
        let text = buffers.take(0, 1 << 20);
        drop(Piece::pooled(text, &buffers, 0));
        assert!(
            buffers.take(0, 1000).capacity() < 1 << 20,
            "a thousand times: let go"
        );
    }
}
