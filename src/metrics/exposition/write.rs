//! Writes a family's gathered lines as text: per line the sample's head, the label piece, the
//! tail and the number, each copied in whole chunks, with the family's header first.

use std::sync::Arc;

use super::family::{Format, SHAPES, header};
use super::gathered::Gathered;
use super::sample::{SAMPLES, Sample};
use crate::metrics::operations::Operations;
use crate::metrics::service::ServiceSeries;
use crate::metrics::text::{CHUNK, Padded, Text, float_line, int_line};

/// Writes one family's lines.
struct LineWriter {
    samples: &'static [Sample],
    floats: ryu::Buffer,
}

impl LineWriter {
    /// Writes line `index` up to its number: the head, the service's `label` and the tail
    /// (with `0` and the newline when `zero`). False when there is no such line.
    #[inline(always)]
    fn begin(&mut self, out: &mut Text, label: &Padded, index: usize, zero: bool) -> bool {
        let Some(sample) = self.samples.get(index) else {
            return false;
        };
        out.put_padded(&sample.head);
        out.put_padded(label);
        out.put_padded(if zero {
            &sample.tail_zero
        } else {
            &sample.tail
        });
        true
    }

    fn int(&mut self, out: &mut Text, label: &Padded, index: usize, value: u64) {
        if value == 0 {
            self.begin(out, label, index, true);
            return;
        }
        let mut number = [0; 2 * CHUNK];
        let length = int_line(value, &mut number);
        if self.begin(out, label, index, false) {
            out.put(&number, length);
        }
    }

    fn float(&mut self, out: &mut Text, label: &Padded, index: usize, value: f64) {
        let mut number = [0; 2 * CHUNK];
        let length = float_line(value, &mut number, &mut self.floats);
        if self.begin(out, label, index, false) {
            out.put(&number, length);
        }
    }

    /// Writes a gathered line: `sample` (the high bit marks a float) and its value.
    fn line(&mut self, out: &mut Text, label: &Padded, sample: u8, value: u64) {
        let index = usize::from(sample & !Gathered::FLOAT);
        if sample & Gathered::FLOAT == 0 {
            self.int(out, label, index, value);
        } else {
            self.float(out, label, index, f64::from_bits(value));
        }
    }
}

/// Writes the `index`th per-service family's text for `services` from what
/// [`gather_run`](super::read::gather_run) read for them into the empty `out`; with `headers`,
/// it starts with the family's `# HELP` and `# TYPE` (a run that continues another has none).
pub(crate) fn write_gathered(
    format: Format,
    index: usize,
    services: &[&ServiceSeries],
    operations: &[Option<Arc<Operations>>],
    gathered: &Gathered,
    headers: bool,
    out: &mut Text,
) {
    let (Some(samples), Some(shape)) = (SAMPLES.get(index), SHAPES.get(index)) else {
        return;
    };
    if headers {
        header(out, format, *shape);
    }
    let longest_line = samples
        .iter()
        .map(|sample| sample.head.len + sample.tail.len + 25)
        .max()
        .unwrap_or(0);
    let mut writer = LineWriter {
        samples,
        floats: ryu::Buffer::new(),
    };
    let mut start = 0;
    let no_operations = Operations::default();
    let mut changes = gathered.labels.iter().peekable();
    for ((service, count), service_operations) in
        services.iter().zip(&gathered.counts).zip(operations)
    {
        let end = (start + usize::from(*count)).min(gathered.values.len());
        let samples = &gathered.samples[start..end];
        let values = &gathered.values[start..end];
        let first = start;
        start = end;
        // The label changes within this service's lines (each service starts with its name).
        let mut here = Vec::new();
        while let Some((line, label)) = changes.next_if(|(line, _)| (*line as usize) < end) {
            here.push((*line as usize - first, *label));
        }
        if here.iter().all(|(_, label)| *label == 0) {
            let label = service.label();
            // Room for this service's lines only: the room is zeroed as it is made, and the
            // room for a whole run's longest possible lines is several times what they take.
            out.make_room(values.len() * (longest_line + label.len));
            for (sample, value) in samples.iter().zip(values) {
                writer.line(out, label, *sample, *value);
            }
            continue;
        }
        let operations = service_operations.as_deref().unwrap_or(&no_operations);
        let longest_label = (0..operations.names().len())
            .filter_map(|index| operations.label(index))
            .map(|label| label.len)
            .max()
            .unwrap_or(0)
            .max(service.label().len);
        out.make_room(values.len() * (longest_line + longest_label));
        let mut here = here.into_iter().peekable();
        let mut label = service.label();
        for (line, (sample, value)) in samples.iter().zip(values).enumerate() {
            while let Some((_, piece)) = here.next_if(|(at, _)| *at <= line) {
                label = match piece.checked_sub(1) {
                    None => service.label(),
                    Some(index) => operations
                        .label(usize::from(index))
                        .unwrap_or_else(|| service.label()),
                };
            }
            writer.line(out, label, *sample, *value);
        }
    }
}
