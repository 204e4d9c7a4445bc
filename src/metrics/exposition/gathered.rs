//! What a family's lines of a run of services are written from: per line which sample it is,
//! its number and its label piece, recorded through [`Lines`] while the series are read.

/// Where a family's lines for one service go, as `write_family` reads them.
pub(super) trait Lines {
    /// The label piece of the lines that follow: 0 the service's name, 1 + N the service's
    /// name and operation N (`mpesa",operation="stk_push`).
    fn label(&mut self, label: u8);
    fn int(&mut self, index: usize, value: u64);
    fn float(&mut self, index: usize, value: f64);
}

/// What one family's lines of a run of services are written from: per service how many lines
/// it has, per line which sample it is (the high bit set for a float) and its number (a
/// float's bits). Two gatherings that are equal write the same text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Gathered {
    pub(super) counts: Vec<u16>,
    pub(super) samples: Vec<u8>,
    /// Where the label piece changes (see [`Lines::label`]): from that line on, that label; 0
    /// (the service's name) before the first. Most families of most services have none.
    pub(super) labels: Vec<(u32, u8)>,
    pub(super) values: Vec<u64>,
    /// The label piece of the next line.
    current: u8,
}

impl Gathered {
    /// Marks a float in `samples`.
    pub(super) const FLOAT: u8 = 0x80;

    pub(super) fn clear(&mut self) {
        self.counts.clear();
        self.samples.clear();
        self.labels.clear();
        self.values.clear();
        self.current = 0;
    }

    /// The sample byte of line `index` (no family has 128 lines per service).
    fn sample(index: usize, float: bool) -> u8 {
        let index = u8::try_from(index).unwrap_or(Self::FLOAT - 1) & !Self::FLOAT;
        if float { index | Self::FLOAT } else { index }
    }
}

impl Lines for Gathered {
    fn label(&mut self, label: u8) {
        if label != self.current {
            let line = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
            self.labels.push((line, label));
            self.current = label;
        }
    }

    fn int(&mut self, index: usize, value: u64) {
        self.samples.push(Self::sample(index, false));
        self.values.push(value);
    }

    fn float(&mut self, index: usize, value: f64) {
        self.samples.push(Self::sample(index, true));
        self.values.push(value.to_bits());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition::sample::SAMPLES;

    #[test]
    fn every_line_of_a_service_can_be_named_in_a_gathering() {
        for samples in SAMPLES.iter() {
            assert!(samples.len() < usize::from(Gathered::FLOAT));
        }
    }
}
