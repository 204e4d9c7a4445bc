//! Remembers, for each run of services of the last `/metrics` answer, the numbers each family's
//! text was written from and the text. A family whose numbers have not changed since (most of
//! them: thresholds, timeouts, failure reasons, transitions of a healthy fleet) is sent again
//! as it was; one that changed is written again into its old buffer, which is already mapped
//! (writing 10,000 services' texts into fresh memory cost a page fault every 4 KiB, a quarter
//! of a scrape).

use std::sync::{Arc, Mutex, PoisonError};

use super::exposition::{FAMILIES, Format, Gathered, gather_run, room_for, write_gathered};
use super::service::ServiceSeries;
use super::text::Text;

/// How many runs of services a large exposition is written in at most.
pub(crate) const MAX_RUNS: usize = 64;

/// What one run of services was last written from, and its texts.
#[derive(Default)]
pub(crate) struct RunMemo {
    /// The format and whether the texts start with the families' headers.
    written_as: Option<(Format, bool)>,
    /// Which series the run held, in order.
    series: Vec<u64>,
    families: [FamilyMemo; FAMILIES],
}

#[derive(Default)]
struct FamilyMemo {
    gathered: Gathered,
    text: Option<Arc<Text>>,
}

/// The memo of each run: at most one (a second scrape at the same moment writes without one,
/// and only one of the two is kept).
#[derive(Default)]
pub(crate) struct Memos {
    runs: Mutex<Vec<Option<RunMemo>>>,
}

impl std::fmt::Debug for Memos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memos").finish_non_exhaustive()
    }
}

impl Memos {
    /// Run `run`'s memo, empty when there is none.
    pub(crate) fn take(&self, run: usize) -> RunMemo {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(run)
            .and_then(Option::take)
            .unwrap_or_default()
    }

    /// Keeps `memo` for run `run`, unless another is kept already or there are too many runs.
    pub(crate) fn keep(&self, run: usize, memo: RunMemo) {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if run >= MAX_RUNS {
            return;
        }
        if runs.len() <= run {
            runs.resize_with(run + 1, || None);
        }
        if let Some(empty @ None) = runs.get_mut(run) {
            *empty = Some(memo);
        }
    }

    /// Forgets the runs from `runs` on (a reload dropped services, so fewer runs are written).
    pub(crate) fn forget_from(&self, runs: usize) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .truncate(runs);
    }
}

/// A writer thread's space for the numbers of the run it writes.
#[derive(Default)]
pub(crate) struct Scratch {
    gathered: [Gathered; FAMILIES],
    /// The operations each service of the run had when its numbers were read.
    operations: Vec<Option<std::sync::Arc<super::operations::Operations>>>,
}

/// Every per-service family's text for `services` (sorted by name) in `format`, with the
/// families' headers when `headers`: the text `memo` kept when the numbers are the same, a text
/// written again otherwise. `memo` then remembers this answer.
pub(crate) fn write_run(
    format: Format,
    services: &[&ServiceSeries],
    held: &super::HeldServices,
    headers: bool,
    memo: &mut RunMemo,
    scratch: &mut Scratch,
) -> [Arc<Text>; FAMILIES] {
    let same_series = memo.written_as == Some((format, headers))
        && memo.series.len() == services.len()
        && memo
            .series
            .iter()
            .zip(services)
            .all(|(id, series)| *id == series.id());
    if !same_series {
        memo.written_as = Some((format, headers));
        memo.series.clear();
        memo.series
            .extend(services.iter().map(|series| series.id()));
    }
    gather_run(
        services,
        held,
        &mut scratch.gathered,
        &mut scratch.operations,
    );
    let room = room_for(services.len());
    std::array::from_fn(|index| {
        let family = &mut memo.families[index];
        let gathered = &mut scratch.gathered[index];
        let text = match family.text.take() {
            Some(text) if same_series && family.gathered == *gathered => text,
            kept => {
                // The old text's buffer, unless an answer still being sent holds it.
                let buffer = kept
                    .and_then(|text| Arc::try_unwrap(text).ok())
                    .map(Text::into_buffer)
                    .filter(|buffer| buffer.capacity() <= room[index].saturating_mul(4))
                    .unwrap_or_else(|| Vec::with_capacity(room[index]));
                let mut text = Text::new(buffer);
                write_gathered(
                    format,
                    index,
                    services,
                    &scratch.operations,
                    gathered,
                    headers,
                    &mut text,
                );
                std::mem::swap(&mut family.gathered, gathered);
                Arc::new(text)
            }
        };
        family.text = Some(Arc::clone(&text));
        text
    })
}

/// One piece of an exposition: valid UTF-8 text, shared with the memo that may send it again.
#[derive(Debug)]
pub struct Piece {
    text: Arc<Text>,
}

impl Piece {
    pub(crate) fn shared(text: Arc<Text>) -> Self {
        Self { text }
    }

    /// A piece of its own.
    pub(crate) fn owned(text: Vec<u8>) -> Self {
        Self {
            text: Arc::new(Text::whole(text)),
        }
    }
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}
