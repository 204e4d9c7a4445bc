//! The stable hash of a name (FNV-1a, 64 bits) that spreads services over buckets: the same on
//! every replica, every run and every platform, so shards and check threads agree everywhere.

/// The bucket of `name` among `count` (at least one): FNV-1a, 64 bits, of the name's bytes,
/// modulo `count`.
pub(crate) fn bucket(name: &str, count: u32) -> u32 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    u32::try_from(hash % u64::from(count.max(1))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_lands_in_the_same_bucket_within_range() {
        assert_eq!(bucket("mpesa", 3), bucket("mpesa", 3));
        assert_eq!(bucket("mpesa", 1), 0);
        assert_eq!(bucket("mpesa", 0), 0, "no buckets is one");
        assert!((0..200).all(|n| bucket(&format!("service-{n}"), 7) < 7));
    }
}
